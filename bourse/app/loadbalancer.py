"""HAProxy in front of several API nodes: the one definition of its configuration.

`bourse up --api-nodes N` and the multi-node tests run Debian's ``haproxy`` with the
configuration :func:`haproxy_config` renders; ``ops/haproxy/haproxy.cfg`` is the same shape for
a production fleet (TLS, more nodes), checked against this one by the tests. A real load balancer
rather than a home-made one (issue 21): HAProxy speaks websockets after the HTTP upgrade with no
extra configuration, evicts a node whose ``/readyz`` fails, and retries a request whose connection
the node refused, so a dying node costs in-flight requests only.

Why these settings:
- ``balance leastconn``: websockets are long-lived, so round robin would pile them on whichever node
  came up first; least-connections spreads open subscriptions as well as requests.
- ``option httpchk GET /readyz`` every second, down after 2 failures, up after 2 successes: a node
  whose PostgreSQL, Redis or matching is down (``/readyz`` 503) takes no new traffic, and a killed
  node is out within ~2 s (``on-marked-down shutdown-sessions`` also closes its websockets, so their
  clients reconnect at once, to a live node, and resume by cursor).
- ``retry-on conn-failure empty-response`` with ``option redispatch``: a request whose connection
  failed or was closed without a byte is sent again, to another node. Only those: a request that a
  node may have started executing is never replayed by the balancer (mutations are not idempotent
  without an ``Idempotency-Key``).
- ``timeout tunnel 1h``: an idle websocket (a quiet watchlist) is not cut after the HTTP timeouts;
  subscriptions send keep-alives well within it.
- ``option forwardfor``: nodes see the client's address in ``X-Forwarded-For``; they believe it
  only from ``BOURSE_TRUSTED_PROXIES`` (the balancer's address), so per-IP limits count clients.
"""

from __future__ import annotations

import resource
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    host: str
    port: int


def haproxy_binary() -> str | None:
    """Debian's ``haproxy`` (``apt-get install haproxy``), when installed."""
    return shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if Path(p).exists()), None
    )


def haproxy_config(
    listen_host: str,
    listen_port: int,
    nodes: Sequence[Node],
    *,
    admin_socket: Path | None = None,
    check_interval_ms: int = 1000,
    check_host: str = "localhost",
) -> str:
    """The configuration for HAProxy listening on ``listen_host:listen_port`` in front of
    ``nodes``. ``admin_socket``: HAProxy's runtime API (``show stat``, ``disable server``).
    ``check_host``: the Host header of the health checks (the nodes answer only hosts they
    serve: ``BOURSE_ALLOWED_HOSTS``; loopback names are allowed on a loopback-bound node)."""
    if not nodes:
        raise ValueError("at least one API node")
    stats = ""
    if admin_socket is not None:
        stats = f"    stats socket {admin_socket} mode 600 level admin\n"
    servers = "".join(f"    server {n.name} {n.host}:{n.port} check\n" for n in nodes)
    return (
        "# Rendered by bourse.app.loadbalancer: HAProxy in front of Bourse's API nodes.\n"
        "global\n"
        f"    maxconn {max_connections()}\n"
        f"{stats}"
        "\n"
        "defaults\n"
        "    mode http\n"
        "    option forwardfor\n"
        "    option redispatch\n"
        "    retries 2\n"
        "    retry-on conn-failure empty-response\n"
        "    timeout connect 2s\n"
        "    timeout client 60s\n"
        "    timeout server 60s\n"
        "    timeout http-request 10s\n"
        "    timeout tunnel 1h\n"
        "\n"
        "frontend bourse\n"
        f"    bind {_bind_address(listen_host)}:{listen_port}\n"
        "    default_backend api\n"
        "\n"
        "backend api\n"
        "    balance leastconn\n"
        "    option httpchk\n"
        f"    http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host {check_host}\n"
        "    http-check expect status 200\n"
        f"    default-server inter {check_interval_ms}ms fastinter {check_interval_ms // 2}ms"
        " fall 2 rise 2 on-marked-down shutdown-sessions\n"
        f"{servers}"
    )


def max_connections(ceiling: int = 50_000) -> int:
    """Connections HAProxy may hold: ``ceiling``, or what the open-files limit allows (each
    proxied connection takes two descriptors; HAProxy refuses to start otherwise)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        return ceiling
    return max(256, min(ceiling, (hard - 200) // 2))


def haproxy_argv(binary: str, config: Path) -> list[str]:
    """Foreground (``-db``: no daemon, so a supervisor sees it die) with ``config``."""
    return [binary, "-db", "-f", str(config)]


def _bind_address(host: str) -> str:
    return f"[{host}]" if ":" in host else host

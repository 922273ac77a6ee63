"""Private, throw-away PostgreSQL 15 (+ pgaudit) and MariaDB (+ server_audit) servers for tests.

Each server is initialised into its own temporary directory under /tmp (not pytest's
tmp_path: its 0700 parents are closed to the unprivileged server user, and a Unix socket
path must stay under ~107 bytes), listens on 127.0.0.1 on a free port and on a Unix
socket in that directory, and writes its audit logs there under fixed names. The
machine's own PostgreSQL (5432) and MariaDB (3306) are never touched: nothing here
reads /etc/postgresql or /etc/mysql (`--defaults-file` / our own postgresql.conf).

Running as root: PostgreSQL refuses to run as root and mariadbd only runs as root when
told so. When the test process is root, the servers (and initdb / mariadb-install-db)
run as an unprivileged system user: `postgres` / `mysql` when they exist, otherwise a
dedicated `exfiltest` user (created with useradd), or $EXFIL_DB_OS_USER. The privilege
drop happens in the child before exec, followed by PR_SET_PDEATHSIG (a credential change
clears it, so the order matters): if the test process dies, even by SIGKILL, the
server receives its clean-shutdown signal. atexit and the fixtures' teardown stop them too.

Load the fixtures with `pytest_plugins = ["tests.databases"]` in a conftest. Fixtures:

* `private_postgres`, `private_mariadb` (session scope): a running server, stopped at the
  end of the session. Each yields the server object: `.port`, `.log_files`,
  `.log_line_prefix`, `.run_sql(role, sql, application=...)`, `.wait_for_log(...)`.
* `postgres_crm`, `mariadb_crm` (session scope): the same servers after the workload of
  tests/db_workload.py ran once; each yields `(server, Workload)`.

When a server cannot be started the fixture fails with the reason and the log tails;
set EXFIL_SKIP_DATABASES=1 to skip these tests instead.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

HOST = "127.0.0.1"
PG_BIN_DIR = Path(os.environ.get("EXFIL_PG_BIN_DIR", "/usr/lib/postgresql/15/bin"))
SKIP_ENV = "EXFIL_SKIP_DATABASES"
KEEP_ENV = "EXFIL_KEEP_DATABASES"  # =1: leave the temporary directories behind for inspection
OS_USER_ENV = "EXFIL_DB_OS_USER"
FALLBACK_OS_USER = "exfiltest"
START_TIMEOUT = float(os.environ.get("EXFIL_DB_START_TIMEOUT", "90"))  # 2 shared cores: be patient
STOP_TIMEOUT = 30.0
SQL_TIMEOUT = 120.0
_LOG_TAIL_BYTES = 3000

# The audit settings of the real captures (/work/shared/samples/pg15_postgresql.conf.audit-section),
# minus pg_stat_statements / auto_explain, with fixed file names. Paths and the port are added per
# instance; see PrivatePostgres.settings for the complete, rendered set.
PG_LOG_LINE_PREFIX = "%m [%p] user=%u db=%d app=%a client=%h session=%c line=%l vxid=%v txid=%x tag=%i: "
PG_AUDIT_SETTINGS: dict[str, str] = {
    "listen_addresses": "'127.0.0.1'",
    "shared_preload_libraries": "'pgaudit'",
    "logging_collector": "on",
    "log_destination": "'stderr,csvlog,jsonlog'",
    "log_filename": "'postgresql.log'",  # csvlog -> postgresql.csv, jsonlog -> postgresql.json
    "log_rotation_age": "0",
    "log_rotation_size": "0",
    "log_file_mode": "0640",
    "log_line_prefix": f"'{PG_LOG_LINE_PREFIX}'",
    "log_connections": "on",
    "log_disconnections": "on",
    "log_timezone": "'UTC'",
    "pgaudit.log": "'read, write, ddl'",
    "pgaudit.log_catalog": "off",
    "pgaudit.log_relation": "on",
    "pgaudit.log_parameter": "on",
    "pgaudit.log_rows": "on",
    "pgaudit.log_statement_once": "off",
}
# Speed and footprint for a throw-away test cluster; nothing to do with auditing. Never in production.
PG_TEST_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "32MB",
    "max_connections": "30",
    "lc_messages": "'C.UTF-8'",
}

# As /work/shared/samples/mariadb_my.cnf.used, minus the general log and performance_schema.
MARIADB_AUDIT_SETTINGS: dict[str, str] = {
    "bind-address": "127.0.0.1",
    "skip-name-resolve": "",
    "plugin-load-add": "server_audit",
    "server_audit_logging": "ON",
    "server_audit_events": "CONNECT,QUERY,TABLE",
    "server_audit_output_type": "file",
    "server_audit_file_rotate_size": "1000000000",
    "server_audit_query_log_limit": "4096",
    "slow_query_log": "ON",
    "long_query_time": "0",
    "log_slow_verbosity": "query_plan",
    "log_output": "FILE",
}
# The comma-separated fields of a server_audit file line (the object of a QUERY is the statement,
# single-quoted with \' escapes; retcode is the error number, 0 on success).
SERVER_AUDIT_FIELDS = ("timestamp", "serverhost", "username", "host", "connectionid", "queryid", "operation",
                       "database", "object", "retcode")
MARIADB_TEST_SETTINGS: dict[str, str] = {
    "innodb_buffer_pool_size": "64M",
    "innodb_log_file_size": "16M",
    "innodb_flush_log_at_trx_commit": "2",
    "max_connections": "30",
}


class DatabaseError(RuntimeError):
    """A private database server could not be found, started or used."""


class _PortTaken(DatabaseError):
    pass


# --------------------------------------------------------------------------- processes

_live: set[_PrivateServer] = set()
_started: list[tuple[str, dict[str, float]]] = []  # (kind, timings) of every start, for the terminal summary


@atexit.register
def _stop_all_at_exit() -> None:
    for server in list(_live):
        with contextlib.suppress(Exception):
            server.stop()


def free_port(host: str = HOST) -> int:
    """A TCP port that was free on `host` a moment ago (the usual small race applies; start() retries)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, limit: int = _LOG_TAIL_BYTES) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"<{path.name}: {exc.strerror}>"
    return data[-limit:].decode("utf-8", "replace")


class OsUser:
    """The account a server runs as: `name`, `uid`, `gid`, or nobody to switch to (not root)."""

    def __init__(self, name: str, uid: int, gid: int, switch: bool) -> None:
        self.name, self.uid, self.gid, self.switch = name, uid, gid, switch

    @classmethod
    def for_server(cls, preferred: str) -> OsUser:
        """As root: $EXFIL_DB_OS_USER, else `preferred` if it exists, else `exfiltest` (created).

        Not root: the current user, no switch.
        """
        if os.geteuid() != 0:
            entry = pwd.getpwuid(os.geteuid())
            return cls(entry.pw_name, entry.pw_uid, entry.pw_gid, switch=False)
        for name in filter(None, (os.environ.get(OS_USER_ENV), preferred)):
            with contextlib.suppress(KeyError):
                entry = pwd.getpwnam(name)
                if entry.pw_uid == 0:
                    raise DatabaseError(f"{name!r} is root: the database servers need an unprivileged user")
                return cls(entry.pw_name, entry.pw_uid, entry.pw_gid, switch=True)
            if name == os.environ.get(OS_USER_ENV):
                raise DatabaseError(f"{OS_USER_ENV}={name!r}: no such user")
        return cls._fallback()

    @classmethod
    def _fallback(cls) -> OsUser:
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(FALLBACK_OS_USER)
            return cls(entry.pw_name, entry.pw_uid, entry.pw_gid, switch=True)
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        done = subprocess.run(
            [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", FALLBACK_OS_USER], capture_output=True, text=True, check=False)
        if done.returncode not in (0, 9):  # 9: created meanwhile by a parallel run
            raise DatabaseError(f"cannot create the unprivileged user {FALLBACK_OS_USER!r} for the test "
                                f"database servers: {done.stderr.strip() or done.returncode}")
        entry = pwd.getpwnam(FALLBACK_OS_USER)
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid, switch=True)

    def chown(self, path: Path) -> None:
        if self.switch:
            os.chown(path, self.uid, self.gid)


def _child_setup(user: OsUser, death_signal: int) -> Callable[[], None]:
    """preexec_fn: own process group, drop to `user`, then PR_SET_PDEATHSIG (cleared by setuid, so last).

    PR_SET_PDEATHSIG fires when the *thread* that forked exits, so it is only armed when
    spawning from the main thread; atexit and the fixtures cover the rest.
    """
    parent = os.getpid()
    prctl = None
    if sys.platform.startswith("linux") and threading.current_thread() is threading.main_thread():
        with contextlib.suppress(OSError, AttributeError):
            prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before fork
    groups = os.getgrouplist(user.name, user.gid) if user.switch else []

    def setup() -> None:
        os.setpgid(0, 0)  # a terminal's Ctrl-C goes to pytest, which then tears down cleanly
        if user.switch:
            os.setgroups(groups)
            os.setgid(user.gid)
            os.setuid(user.uid)
        if prctl is not None:
            prctl(1, death_signal)  # PR_SET_PDEATHSIG
            if os.getppid() != parent:
                os._exit(1)

    return setup


def _server_env(user: OsUser) -> dict[str, str]:
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TZ": "UTC"}
    if user.switch:
        env.update({"USER": user.name, "LOGNAME": user.name, "HOME": "/nonexistent"})
    else:
        env.update({k: os.environ[k] for k in ("USER", "LOGNAME", "HOME") if k in os.environ})
    return env


def _client_env(extra: dict[str, str]) -> dict[str, str]:
    """The test process's environment without libpq / MySQL client variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "MYSQL", "MARIADB"))}
    env.update(extra)
    return env


class _PrivateServer:
    """Common process handling: temp dir, spawn as the unprivileged user, readiness, stop, log tails."""

    kind = "database"
    stop_signal = signal.SIGTERM
    preferred_user = FALLBACK_OS_USER
    prefix = "exfil-db-"

    def __init__(self, base_dir: str | os.PathLike[str] | None = None, keep: bool | None = None) -> None:
        self.base_dir = Path(base_dir or os.environ.get("EXFIL_DB_TMPDIR", "/tmp"))
        self.keep = os.environ.get(KEEP_ENV) == "1" if keep is None else keep
        self.root: Path | None = None
        self.port: int = 0
        self.host = HOST
        self.proc: subprocess.Popen[bytes] | None = None
        self.user: OsUser | None = None
        self.timings: dict[str, float] = {}

    # lifecycle -------------------------------------------------------------------------
    def start(self) -> _PrivateServer:
        """Initialise a fresh data directory and start the server; retry on a port race."""
        self._check_installation()
        self.user = OsUser.for_server(self.preferred_user)
        self.root = Path(tempfile.mkdtemp(prefix=self.prefix, dir=self.base_dir))
        self.user.chown(self.root)
        _live.add(self)
        try:
            began = time.monotonic()
            self._initialise()
            self.timings["init"] = time.monotonic() - began
            for attempt in range(3):
                began = time.monotonic()
                self.port = free_port()
                try:
                    self._start_once()
                except _PortTaken:
                    if attempt == 2:
                        raise
                    continue
                self.timings["start"] = time.monotonic() - began
                break
            _started.append((self.kind, dict(self.timings)))
        except BaseException:
            self.stop(remove=False)  # the error message names the directory: leave it for inspection
            raise
        return self

    def stop(self, remove: bool = True) -> None:
        """Clean shutdown (escalating to SIGKILL after STOP_TIMEOUT); remove the directory unless kept."""
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, self.stop_signal)
                try:
                    proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            # helpers left in the group (none expected) must not outlive the test run
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        _live.discard(self)
        if remove and self.root is not None and not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def __enter__(self) -> _PrivateServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # helpers for subclasses ------------------------------------------------------------
    def _path(self, *parts: str) -> Path:
        assert self.root is not None, "not started"
        return self.root.joinpath(*parts)

    def _mkdir(self, *parts: str) -> Path:
        path = self._path(*parts)
        path.mkdir(parents=True, exist_ok=True)
        assert self.user is not None
        self.user.chown(path)
        return path

    def _write(self, path: Path, text: str) -> None:
        path.write_text(text)
        assert self.user is not None
        self.user.chown(path)

    def _run_as_server_user(self, argv: list[str], what: str, timeout: float = START_TIMEOUT) -> None:
        assert self.user is not None and self.root is not None
        log = self._path(f"{what}.out")
        with open(log, "ab") as out:
            try:
                done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                      cwd=self.root, env=_server_env(self.user), timeout=timeout, check=False,
                                      preexec_fn=_child_setup(self.user, signal.SIGKILL))  # noqa: PLW1509
            except subprocess.TimeoutExpired:
                raise self._error(f"{what} did not finish within {timeout:.0f} s") from None
        if done.returncode != 0:
            raise self._error(f"{what} failed with status {done.returncode}")

    def _spawn(self, argv: list[str]) -> None:
        assert self.user is not None and self.root is not None
        with open(self._path("server.out"), "ab") as out:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=self.root,
                env=_server_env(self.user), preexec_fn=_child_setup(self.user, self.stop_signal))  # noqa: PLW1509

    def _wait(self, ready: Callable[[], bool], deadline: float, port_taken: Callable[[], bool]) -> None:
        while True:
            if ready():
                return
            if self.proc is None or self.proc.poll() is not None:
                status = None if self.proc is None else self.proc.returncode
                self.proc = None
                if port_taken():
                    raise _PortTaken(str(self._error(f"port {self.port} was taken")))
                raise self._error(f"the {self.kind} server exited during start-up (status {status})")
            if time.monotonic() > deadline:
                raise self._error(f"the {self.kind} server was not ready within {START_TIMEOUT:.0f} s")
            time.sleep(0.05)

    def _log_paths_for_errors(self) -> list[Path]:
        return []

    def log_tail(self) -> str:
        """The end of every log the server and its set-up wrote, for error messages."""
        if self.root is None:
            return ""
        paths = sorted(self.root.glob("*.out")) + self._log_paths_for_errors()
        return "\n".join(f"--- {p.name} ---\n{_tail(p)}" for p in paths if p.exists())

    def _error(self, what: str) -> DatabaseError:
        return DatabaseError(f"{what}; directory {self.root}\n{self.log_tail()}")

    def _check_installation(self) -> None:
        raise NotImplementedError

    def _initialise(self) -> None:
        raise NotImplementedError

    def _start_once(self) -> None:
        raise NotImplementedError

    # logs ------------------------------------------------------------------------------
    def wait_for_log(self, pattern: str | re.Pattern[str], path: Path | None = None,
                     timeout: float = 10.0, count: int = 1) -> list[str]:
        """Lines of `path` (default: the main audit log) matching `pattern`, once at least `count` exist.

        Log writers are asynchronous (PostgreSQL's logging collector), so tests wait for what
        they expect instead of reading right after the client returned.
        """
        path = path or self.audit_log
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while True:
            try:
                text = path.read_text(errors="replace")
            except FileNotFoundError:
                text = ""
            lines = [line for line in text.splitlines() if regex.search(line)]
            if len(lines) >= count or time.monotonic() > deadline:
                if len(lines) < count:
                    raise AssertionError(f"{len(lines)} line(s) of {path} match {regex.pattern!r} after "
                                         f"{timeout:.0f} s, expected {count}\n--- tail ---\n{_tail(path)}")
                return lines
            time.sleep(0.05)

    @property
    def audit_log(self) -> Path:
        raise NotImplementedError


# --------------------------------------------------------------------------- PostgreSQL

class PrivatePostgres(_PrivateServer):
    """PostgreSQL 15 with pgaudit, logging to stderr, csvlog and jsonlog files at once.

    Authentication: local (Unix socket) connections are `trust` (the superuser `postgres`
    sets things up that way); TCP connections from 127.0.0.1 use scram-sha-256, so every
    role made with `create_role` has a password and a wrong password fails the login.
    """

    kind = "PostgreSQL"
    stop_signal = signal.SIGINT  # "fast" shutdown: roll back sessions, checkpoint, exit
    preferred_user = "postgres"
    prefix = "exfil-pg-"
    superuser = "postgres"

    def __init__(self, settings: dict[str, str] | None = None, bin_dir: str | os.PathLike[str] = PG_BIN_DIR,
                 base_dir: str | os.PathLike[str] | None = None, keep: bool | None = None) -> None:
        """`settings` are postgresql.conf values (already quoted as in the file) that override the defaults."""
        super().__init__(base_dir, keep)
        self.bin_dir = Path(bin_dir)
        self.extra_settings = dict(settings or {})
        self.log_line_prefix = PG_LOG_LINE_PREFIX
        self.passwords: dict[str, str] = {}

    # paths -----------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self._path("data")

    @property
    def log_dir(self) -> Path:
        return self._path("log")

    @property
    def socket_dir(self) -> Path:
        assert self.root is not None
        return self.root

    @property
    def stderr_log(self) -> Path:
        return self.log_dir / "postgresql.log"

    @property
    def csv_log(self) -> Path:
        return self.log_dir / "postgresql.csv"

    @property
    def json_log(self) -> Path:
        return self.log_dir / "postgresql.json"

    @property
    def log_files(self) -> dict[str, Path]:
        """The three destinations of the same events: {'stderr', 'csvlog', 'jsonlog'}."""
        return {"stderr": self.stderr_log, "csvlog": self.csv_log, "jsonlog": self.json_log}

    @property
    def audit_log(self) -> Path:
        return self.stderr_log

    @property
    def settings(self) -> dict[str, str]:
        """Every postgresql.conf line this instance adds to initdb's defaults."""
        values = {"port": str(self.port), "unix_socket_directories": f"'{self.socket_dir}'",
                  "log_directory": f"'{self.log_dir}'"}
        values.update(PG_AUDIT_SETTINGS)
        values.update(PG_TEST_SETTINGS)
        values.update(self.extra_settings)
        return values

    def conf_text(self) -> str:
        return "".join(f"{key} = {value}\n" for key, value in self.settings.items())

    def dsn(self, role: str | None = None, database: str = "postgres") -> str:
        role = role or self.superuser
        password = self.passwords.get(role)
        secret = f" password={password}" if password else ""
        return f"host={self.host} port={self.port} dbname={database} user={role}{secret}"

    # lifecycle -------------------------------------------------------------------------
    def _check_installation(self) -> None:
        missing = [str(self.bin_dir / b) for b in ("initdb", "postgres", "psql") if not (self.bin_dir / b).exists()]
        if missing:
            raise DatabaseError(f"PostgreSQL 15 is not installed: missing {', '.join(missing)} "
                                f"(apt-get install postgresql-15 postgresql-15-pgaudit, or set {SKIP_ENV}=1)")
        libdir = self.bin_dir.parent / "lib"
        preload = {**PG_AUDIT_SETTINGS, **self.extra_settings}.get("shared_preload_libraries", "")
        if "pgaudit" in preload and not (libdir / "pgaudit.so").exists():
            raise DatabaseError(f"pgaudit is not installed: missing {libdir / 'pgaudit.so'} "
                                f"(apt-get install postgresql-15-pgaudit; tests/run does it; or set {SKIP_ENV}=1)")

    def _initialise(self) -> None:
        self._mkdir("log")
        self._run_as_server_user(
            [str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", self.superuser, "-E", "UTF8",
             "--locale=C.UTF-8", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync",
             "--no-instructions"], "initdb")
        hba = ("# exfil-detector test cluster\n"
               "local   all   all                 trust\n"
               "host    all   all   127.0.0.1/32  scram-sha-256\n")
        self._write(self.data_dir / "pg_hba.conf", hba)
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write("\n# exfil-detector test settings\ninclude 'exfil.conf'\n")

    def _start_once(self) -> None:
        self._write(self.data_dir / "exfil.conf", self.conf_text())
        self._path("data", "postmaster.pid").unlink(missing_ok=True)
        self._spawn([str(self.bin_dir / "postgres"), "-D", str(self.data_dir)])
        self._wait(self._ready, time.monotonic() + START_TIMEOUT, self._port_taken)

    def _ready(self) -> bool:
        # postmaster.pid's 8th line turns "ready" once connections are accepted: no probe connection,
        # so nothing extra in the audit log.
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[7].strip() == "ready" and self.proc is not None \
            and lines[0].strip() == str(self.proc.pid)

    def _port_taken(self) -> bool:
        text = _tail(self._path("server.out"), 20000) + _tail(self.stderr_log, 20000)
        return "could not bind IPv4 address" in text or "Address already in use" in text

    def _log_paths_for_errors(self) -> list[Path]:
        return [self.stderr_log]

    # clients ---------------------------------------------------------------------------
    def create_role(self, role: str, password: str | None = None, options: str = "LOGIN") -> str:
        """CREATE ROLE as the superuser; remember the password for `run_sql`. Returns the password."""
        password = password or f"{role}-pw"
        self.run_sql(None, f"CREATE ROLE {role} {options} PASSWORD '{password}';")
        self.passwords[role] = password
        return password

    def run_sql(self, role: str | None, sql: str, application: str | None = None, database: str = "postgres",
                password: str | None = None, check: bool = True, tcp: bool | None = None,
                timeout: float = SQL_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run `sql` (one or more statements, psql meta-commands allowed) with psql as `role`.

        role None or the superuser: over the Unix socket (trust). Any other role: over TCP to
        127.0.0.1 with its password (from `create_role`, or `password`), so the log shows
        client=127.0.0.1. `application` becomes application_name (PGAPPNAME; psql's default
        is "psql"). Output is unaligned, tuples only, `|`-separated. With check=True a
        failure (connection or SQL; ON_ERROR_STOP) raises DatabaseError.
        """
        role = role or self.superuser
        use_tcp = (role != self.superuser) if tcp is None else tcp
        extra = {"PGAPPNAME": application or "psql", "PGCONNECT_TIMEOUT": "10"}
        pw = password if password is not None else self.passwords.get(role)
        if pw is not None:
            extra["PGPASSWORD"] = pw
        host = self.host if use_tcp else str(self.socket_dir)
        argv = [str(self.bin_dir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-w",
                "-h", host, "-p", str(self.port), "-U", role, "-d", database]
        done = subprocess.run(argv, input=sql, capture_output=True, text=True, env=_client_env(extra),
                              timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise DatabaseError(f"psql as {role} on {database} failed ({done.returncode}): {done.stderr.strip()}")
        return done


# --------------------------------------------------------------------------- MariaDB

class PrivateMariaDB(_PrivateServer):
    """MariaDB (10.11 on Debian 12) with the server_audit plugin and a slow log of every statement.

    The administrator is `root` with an empty password over the Unix socket
    (`--auth-root-authentication-method=normal`, so it works for any OS user); users made
    with `create_user` connect over TCP to 127.0.0.1 with a password. The MySQL protocol has
    no application_name that reaches the logs, so `run_sql(application=...)` sends
    `SET @exfil_application = '<application>'` as the session's first statement
    (mariadb --init-command): it appears in server_audit (QUERY) and the slow log.
    """

    kind = "MariaDB"
    stop_signal = signal.SIGTERM
    preferred_user = "mysql"
    prefix = "exfil-my-"
    superuser = "root"
    application_marker = "SET @exfil_application = '{}'"
    log_line_prefix = None  # server_audit has a fixed format: see SERVER_AUDIT_FIELDS

    def __init__(self, settings: dict[str, str] | None = None, server: str | None = None,
                 base_dir: str | os.PathLike[str] | None = None, keep: bool | None = None) -> None:
        """`settings` are my.cnf [mariadbd] values overriding the defaults ("" for a bare flag)."""
        super().__init__(base_dir, keep)
        self.server_bin = server or shutil.which("mariadbd") or "/usr/sbin/mariadbd"
        self.install_bin = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
        self.client_bin = shutil.which("mariadb") or shutil.which("mysql") or "/usr/bin/mariadb"
        self.extra_settings = dict(settings or {})
        self.passwords: dict[str, str] = {}

    @property
    def data_dir(self) -> Path:
        return self._path("data")

    @property
    def socket_path(self) -> Path:
        return self._path("mariadb.sock")

    @property
    def outfile_dir(self) -> Path:
        """secure_file_priv: the only directory SELECT ... INTO OUTFILE may write to."""
        return self._path("outfiles")

    @property
    def audit_log(self) -> Path:
        return self._path("server_audit.log")

    @property
    def slow_log(self) -> Path:
        return self._path("slow.log")

    @property
    def error_log(self) -> Path:
        return self._path("error.log")

    @property
    def log_files(self) -> dict[str, Path]:
        return {"server_audit": self.audit_log, "slow": self.slow_log, "error": self.error_log}

    @property
    def config_path(self) -> Path:
        return self._path("my.cnf")

    @property
    def settings(self) -> dict[str, str]:
        """Every [mariadbd] line of this instance's my.cnf."""
        values = {"datadir": str(self.data_dir), "port": str(self.port), "socket": str(self.socket_path),
                  "pid-file": str(self._path("mariadbd.pid")), "log-error": str(self.error_log),
                  "secure-file-priv": str(self.outfile_dir)}
        values.update(MARIADB_AUDIT_SETTINGS)
        values["server_audit_file_path"] = str(self.audit_log)
        values["slow_query_log_file"] = str(self.slow_log)
        values.update(MARIADB_TEST_SETTINGS)
        values.update(self.extra_settings)
        return values

    def conf_text(self) -> str:
        lines = ["[mariadbd]"] + [f"{k}={v}" if v != "" else k for k, v in self.settings.items()]
        return "\n".join(lines) + "\n"

    def _check_installation(self) -> None:
        missing = [b for b in (self.server_bin, self.install_bin, self.client_bin) if not os.access(b, os.X_OK)]
        if missing:
            raise DatabaseError(f"MariaDB is not installed: missing {', '.join(missing)} "
                                f"(apt-get install mariadb-server, or set {SKIP_ENV}=1)")
        plugin_dirs = [Path("/usr/lib/mysql/plugin"), *Path("/usr/lib").glob("*/mariadb*/plugin")]
        if {**MARIADB_AUDIT_SETTINGS, **self.extra_settings}.get("plugin-load-add") == "server_audit" and \
                not any((d / "server_audit.so").exists() for d in plugin_dirs):
            raise DatabaseError("the MariaDB server_audit plugin (server_audit.so) is not installed "
                                f"(it ships with mariadb-server on Debian; or set {SKIP_ENV}=1)")

    def _initialise(self) -> None:
        self._mkdir("data")
        self._mkdir("outfiles")
        # A bare system database; the audit plugin is loaded only by the real start, so its log
        # begins with our own sessions.
        self._run_as_server_user(
            [self.install_bin, "--no-defaults", f"--datadir={self.data_dir}", "--auth-root-authentication-method=normal",
             "--skip-test-db", "--skip-name-resolve", f"--innodb-log-file-size={MARIADB_TEST_SETTINGS['innodb_log_file_size']}",
             f"--innodb-buffer-pool-size={MARIADB_TEST_SETTINGS['innodb_buffer_pool_size']}"], "mariadb-install-db")

    def _start_once(self) -> None:
        self._write(self.config_path, self.conf_text())
        self.error_log.unlink(missing_ok=True)
        self._spawn([self.server_bin, f"--defaults-file={self.config_path}"])
        self._wait(self._ready, time.monotonic() + START_TIMEOUT, self._port_taken)

    def _ready(self) -> bool:
        # "ready for connections" is written after both listeners exist: no probe connection,
        # so nothing extra in the audit log.
        return "ready for connections" in _tail(self.error_log, 20000)

    def _port_taken(self) -> bool:
        text = _tail(self.error_log, 20000)
        return "Address already in use" in text or "Do you already have another server running" in text

    def _log_paths_for_errors(self) -> list[Path]:
        return [self.error_log]

    # clients ---------------------------------------------------------------------------
    def create_user(self, user: str, password: str | None = None, host: str = "%") -> str:
        """CREATE USER as root; remember the password for `run_sql`. Returns the password."""
        password = password or f"{user}-pw"
        self.run_sql(None, f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}';")
        self.passwords[user] = password
        return password

    def run_sql(self, role: str | None, sql: str, application: str | None = None, database: str | None = None,
                password: str | None = None, check: bool = True, tcp: bool | None = None,
                local_infile: bool = False, timeout: float = SQL_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run `sql` (statements separated by `;`) with the mariadb client as `role` (a user name).

        role None or root: over the Unix socket. Any other user: over TCP to 127.0.0.1 with its
        password (from `create_user`, or `password`), so server_audit shows host 127.0.0.1.
        `application` is sent as `SET @exfil_application = '...'` right after connecting.
        Output: --batch (tab-separated, no headers). With check=True a failure raises DatabaseError.
        """
        role = role or self.superuser
        use_tcp = (role != self.superuser) if tcp is None else tcp
        argv = [self.client_bin, "--no-defaults", "--batch", "--skip-column-names", "--no-auto-rehash",
                f"--user={role}", "--connect-timeout=10"]
        argv += [f"--host={self.host}", f"--port={self.port}", "--protocol=TCP"] if use_tcp \
            else [f"--socket={self.socket_path}", "--protocol=SOCKET"]
        pw = password if password is not None else self.passwords.get(role)
        extra = {"MYSQL_PWD": pw} if pw else {}
        if database:
            argv.append(f"--database={database}")
        if application is not None:
            argv.append("--init-command=" + self.application_marker.format(application.replace("'", "''")))
        if local_infile:
            argv.append("--local-infile=1")
        done = subprocess.run(argv, input=sql, capture_output=True, text=True, env=_client_env(extra),
                              timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise DatabaseError(f"mariadb as {role} failed ({done.returncode}): {done.stderr.strip()}")
        return done


# --------------------------------------------------------------------------- fixtures

def _start_or_fail(server: _PrivateServer) -> _PrivateServer:
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1: private {server.kind} server not started")
    try:
        return server.start()
    except DatabaseError as exc:
        pytest.fail(f"cannot start a private {server.kind} server (set {SKIP_ENV}=1 to skip these tests): {exc}",
                    pytrace=False)


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL 15 + pgaudit on a free port, for the whole session."""
    server = _start_or_fail(PrivatePostgres())
    assert isinstance(server, PrivatePostgres)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def private_mariadb() -> Iterator[PrivateMariaDB]:
    """A private MariaDB + server_audit + slow log on a free port, for the whole session."""
    server = _start_or_fail(PrivateMariaDB())
    assert isinstance(server, PrivateMariaDB)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_crm(private_postgres: PrivatePostgres) -> tuple[PrivatePostgres, Any]:
    """`private_postgres` after tests/db_workload.py's CRM workload ran once: (server, Workload)."""
    from tests.db_workload import run_postgres_workload

    return private_postgres, run_postgres_workload(private_postgres)


@pytest.fixture(scope="session")
def mariadb_crm(private_mariadb: PrivateMariaDB) -> tuple[PrivateMariaDB, Any]:
    """`private_mariadb` after tests/db_workload.py's CRM workload ran once: (server, Workload)."""
    from tests.db_workload import run_mariadb_workload

    return private_mariadb, run_mariadb_workload(private_mariadb)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line per private server started in this session: how long initialisation and start took."""
    if not _started:
        return
    terminalreporter.write_sep("-", "private database servers")
    for kind, timings in _started:
        terminalreporter.write_line(f"{kind}: initialise {timings.get('init', 0):.2f} s, "
                                    f"start {timings.get('start', 0):.2f} s")

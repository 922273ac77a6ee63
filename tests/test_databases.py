"""Private PostgreSQL + pgaudit and MariaDB + server_audit servers, the CRM workload, and the
real log lines it produces (tests/databases.py, tests/db_workload.py).

These assert what the servers actually write, so later parsers are tested against real logs:
pgaudit's rows (pgaudit.log_rows) in the stderr, csvlog and jsonlog destinations, the COPY
export logged with rows 0, the FATAL of a wrong password, server_audit QUERY lines and the
slow log's Rows_sent.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import databases
from tests.databases import DatabaseError, PrivateMariaDB, PrivatePostgres
from tests.db_workload import (BULK_SQL, CLERKS, INSIDER, INSIDER_TOOL, PG_EXPORT_SQL, PORTAL, PORTAL_USERS,
                               Workload)

pytestmark = pytest.mark.databases

# --------------------------------------------------------------------------- PostgreSQL log parsing

# log_line_prefix '%m [%p] user=%u db=%d app=%a client=%h session=%c line=%l vxid=%v txid=%x tag=%i: '
PG_LINE = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \S+) \[(?P<pid>\d+)\] user=(?P<user>.*?) db=(?P<db>.*?) "
    r"app=(?P<app>.*?) client=(?P<client>\S*) session=(?P<session>\S+) line=(?P<line>\d+) vxid=(?P<vxid>\S*) "
    r"txid=(?P<txid>\d+) tag=(?P<tag>.*?): (?P<level>[A-Z]+):  (?P<message>.*)$")
AUDIT_FIELDS = ("audit_type", "statement_id", "substatement_id", "class", "command", "object_type",
                "object_name", "statement", "parameter", "rows")


def audit_record(message: str) -> dict[str, str] | None:
    """pgaudit's CSV payload of a log message, as a dict, or None for other messages."""
    if not message.startswith("AUDIT: "):
        return None
    (fields,) = list(csv.reader([message[len("AUDIT: "):]]))
    return dict(zip(AUDIT_FIELDS, fields, strict=True))


def pg_events(server: PrivatePostgres, destination: str) -> list[dict[str, Any]]:
    """Every event of one destination, normalised to user/db/app/client/level/message (+ audit fields)."""
    path = server.log_files[destination]
    events: list[dict[str, Any]] = []
    if destination == "stderr":
        for line in path.read_text().splitlines():
            m = PG_LINE.match(line)
            if m:
                events.append(m.groupdict())
            elif events:  # a continuation line of a multi-line statement
                events[-1]["message"] += "\n" + line
    elif destination == "csvlog":
        with open(path, newline="") as f:
            for row in csv.reader(f):
                events.append({"user": row[1], "db": row[2], "client": row[4].split(":")[0], "level": row[11],
                               "sqlstate": row[12], "message": row[13], "app": row[22]})
    else:
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            events.append({"user": rec.get("user", ""), "db": rec.get("dbname", ""),
                           "client": rec.get("remote_host", ""), "level": rec["error_severity"],
                           "sqlstate": rec.get("state_code", ""), "message": rec["message"],
                           "app": rec.get("application_name", "")})
    for event in events:
        event["audit"] = audit_record(event["message"])
    return events


def audits(events: list[dict[str, Any]], **match: str) -> list[dict[str, Any]]:
    """The audit events whose audit fields (statement compared without a trailing ';') or
    event fields equal `match`."""
    out = []
    for e in events:
        a = e["audit"]
        if a is None:
            continue
        values = {**e, **a, "statement": a["statement"].rstrip(";")}
        if all(values.get(k) == v for k, v in match.items()):
            out.append(values)
    return out


@pytest.fixture(scope="module")
def pg(postgres_crm: tuple[PrivatePostgres, Workload]) -> tuple[PrivatePostgres, Workload]:
    server, work = postgres_crm
    # the logging collector writes asynchronously: wait until the insider's two sessions have ended
    # in every destination (the failed login has no disconnection line)
    for path in server.log_files.values():
        server.wait_for_log(r"clerk_chen\b.*disconnection: session time", path=path, count=2)
    return server, work


# --------------------------------------------------------------------------- PostgreSQL tests

def test_postgres_is_private_and_audited(private_postgres: PrivatePostgres) -> None:
    server = private_postgres
    assert server.port not in (5432, 3306)
    assert server.socket_dir.name.startswith("exfil-pg-")
    assert (server.socket_dir / f".s.PGSQL.{server.port}").exists()
    status = Path(f"/proc/{server.pid}/status").read_text()
    uid = int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]
    assert uid != 0, "PostgreSQL must not run as root"
    shown = server.run_sql(None, "SHOW pgaudit.log; SHOW pgaudit.log_rows; SHOW pgaudit.log_relation; "
                                 "SHOW pgaudit.log_parameter; SHOW log_destination; SHOW logging_collector; "
                                 "SHOW log_line_prefix; SHOW log_connections; SHOW listen_addresses;").stdout
    assert shown.splitlines() == ["read, write, ddl", "on", "on", "on", "stderr,csvlog,jsonlog", "on",
                                  server.log_line_prefix, "on", "127.0.0.1"]
    assert {p.name for p in server.log_files.values()} == {"postgresql.log", "postgresql.csv", "postgresql.json"}


@pytest.mark.parametrize("destination", ["stderr", "csvlog", "jsonlog"])
def test_postgres_bulk_pull_rows_in_every_destination(pg: tuple[PrivatePostgres, Workload], destination: str) -> None:
    server, work = pg
    bulk = work.bulk_pull
    assert bulk.sql == BULK_SQL and bulk.role == INSIDER and bulk.rows == 5000
    (line,) = audits(pg_events(server, destination), statement=BULK_SQL)
    assert (line["user"], line["db"], line["app"], line["client"]) == (INSIDER, "crm", INSIDER_TOOL, "127.0.0.1")
    assert (line["class"], line["command"], line["object_type"], line["object_name"]) == \
        ("READ", "SELECT", "TABLE", "public.customers")
    assert line["rows"] == "5000"  # pgaudit.log_rows


@pytest.mark.parametrize("destination", ["stderr", "csvlog", "jsonlog"])
def test_postgres_copy_export_is_logged_with_rows_zero(pg: tuple[PrivatePostgres, Workload], destination: str) -> None:
    server, work = pg
    assert work.export.sql == PG_EXPORT_SQL and work.export.rows == 5000  # what the client received
    (line,) = audits(pg_events(server, destination), statement=PG_EXPORT_SQL)
    assert (line["user"], line["app"], line["class"], line["command"]) == (INSIDER, "psql", "READ", "COPY")
    assert line["object_name"] == ""  # COPY <table> TO names no relation in pgaudit...
    assert line["rows"] == "0"        # ...and counts no rows


@pytest.mark.parametrize("destination", ["stderr", "csvlog", "jsonlog"])
def test_postgres_failed_login(pg: tuple[PrivatePostgres, Workload], destination: str) -> None:
    server, work = pg
    assert [f.role for f in work.failed_logins] == [INSIDER]
    fatals = [e for e in pg_events(server, destination)
              if e["level"] == "FATAL" and e["message"] == f'password authentication failed for user "{INSIDER}"']
    assert len(fatals) == 1
    assert (fatals[0]["user"], fatals[0]["db"], fatals[0]["client"]) == (INSIDER, "crm", "127.0.0.1")
    if destination != "stderr":
        assert fatals[0]["sqlstate"] == "28P01"


def test_postgres_point_lookups_per_person(pg: tuple[PrivatePostgres, Workload]) -> None:
    server, work = pg
    events = pg_events(server, "stderr")
    for clerk, lookups in CLERKS.items():
        lines = audits(events, user=clerk, object_name="public.customers", command="SELECT")
        assert len(lines) == lookups == work.count(role=clerk, kind="lookup")
        assert {line["rows"] for line in lines} == {"1"}
        assert [line["statement"] for line in lines] == [s.sql for s in work.select(role=clerk, kind="lookup")]
        orders = audits(events, user=clerk, object_name="public.orders")
        assert [int(line["rows"]) for line in orders] == [s.rows for s in work.select(role=clerk, kind="order_lookup")]
    insider = audits(events, user=INSIDER, object_name="public.customers")
    assert len(insider) == work.count(role=INSIDER, kind="lookup") + 1  # + the bulk pull


def test_postgres_portal_carries_the_end_user(pg: tuple[PrivatePostgres, Workload]) -> None:
    server, work = pg
    events = pg_events(server, "jsonlog")
    for user, lookups in PORTAL_USERS.items():
        lines = audits(events, user=PORTAL, app=f"portal user={user}")
        assert len(lines) == lookups == work.count(role=PORTAL, end_user=user)
        assert {line["rows"] for line in lines} == {"1"}


def test_postgres_stderr_lines_follow_the_prefix(pg: tuple[PrivatePostgres, Workload]) -> None:
    server, _ = pg
    lines = server.stderr_log.read_text().splitlines()
    parsed = [line for line in lines if PG_LINE.match(line)]
    # every line but continuations of multi-line DDL statements
    assert len(parsed) >= len(lines) - 40
    assert server.log_line_prefix == databases.PG_LOG_LINE_PREFIX


# --------------------------------------------------------------------------- MariaDB log parsing

AUDIT_LINE = re.compile(r"^(?P<ts>\d{8} \d\d:\d\d:\d\d),(?P<server>[^,]*),(?P<user>[^,]*),(?P<host>[^,]*),"
                        r"(?P<conn>\d+),(?P<query_id>\d+),(?P<op>[A-Z_]+),(?P<db>[^,]*),(?P<object>.*),"
                        r"(?P<retcode>\d*)$")


def server_audit(server: PrivateMariaDB) -> list[dict[str, str]]:
    events = []
    for line in server.audit_log.read_text().splitlines():
        m = AUDIT_LINE.match(line)
        assert m, f"unparsed server_audit line: {line!r}"
        event = m.groupdict()
        obj = event["object"]
        if event["op"] == "QUERY" and obj.startswith("'") and obj.endswith("'"):
            event["object"] = obj[1:-1].replace("\\'", "'")
        events.append(event)
    return events


def slow_entries(server: PrivateMariaDB) -> list[dict[str, Any]]:
    """The slow log as entries: user, Rows_sent, Rows_examined, Rows_affected and the statement."""
    entries: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for line in server.slow_log.read_text().splitlines():
        if line.startswith("# User@Host: "):
            current = {"user": line.split()[2].split("[")[0], "sql": []}
            entries.append(current)
        elif current is None or line.startswith("# Time:"):
            continue
        elif line.startswith("# "):
            current.update({k: v for k, v in re.findall(r"(\w+): (\S+)", line)})
        elif not line.startswith(("SET timestamp=", "use ")):
            current["sql"].append(line)
    for entry in entries:
        entry["sql"] = "\n".join(entry["sql"]).rstrip(";")
    return entries


@pytest.fixture(scope="module")
def my(mariadb_crm: tuple[PrivateMariaDB, Workload]) -> tuple[PrivateMariaDB, Workload]:
    server, work = mariadb_crm
    server.wait_for_log(r",clerk_chen,127\.0\.0\.1,\d+,0,DISCONNECT,crm,", count=2)
    server.wait_for_log("INTO OUTFILE", path=server.slow_log)
    return server, work


# --------------------------------------------------------------------------- MariaDB tests

def test_mariadb_is_private_and_audited(private_mariadb: PrivateMariaDB) -> None:
    server = private_mariadb
    assert server.port not in (5432, 3306)
    assert server.socket_path.exists() and server.socket_path.parent.name.startswith("exfil-my-")
    status = Path(f"/proc/{server.pid}/status").read_text()
    uid = int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]
    assert uid != 0, "mariadbd must not run as root"
    names = ("server_audit_logging", "server_audit_events", "server_audit_file_path", "slow_query_log",
             "long_query_time", "log_slow_verbosity", "secure_file_priv", "bind_address", "port")
    out = server.run_sql(None, f"SHOW GLOBAL VARIABLES WHERE Variable_name IN ({', '.join(repr(n) for n in names)});")
    shown = dict(line.split("\t", 1) for line in out.stdout.splitlines())
    assert shown == {
        "server_audit_logging": "ON", "server_audit_events": "CONNECT,QUERY,TABLE",
        "server_audit_file_path": str(server.audit_log), "slow_query_log": "ON",
        "long_query_time": "0.000000", "log_slow_verbosity": "query_plan",
        "secure_file_priv": f"{server.outfile_dir}/", "bind_address": "127.0.0.1", "port": str(server.port)}


def test_mariadb_server_audit_query_lines(my: tuple[PrivateMariaDB, Workload]) -> None:
    server, work = my
    events = server_audit(server)
    queries = [e for e in events if e["op"] == "QUERY"]
    (bulk,) = [e for e in queries if e["object"] == BULK_SQL]
    assert (bulk["user"], bulk["host"], bulk["db"], bulk["retcode"]) == (INSIDER, "127.0.0.1", "crm", "0")
    # the TABLE event of the same statement shares its query id
    assert any(e["op"] == "READ" and e["query_id"] == bulk["query_id"] and e["object"] == "customers"
               for e in events)
    for clerk in CLERKS:
        mine = [e["object"] for e in queries if e["user"] == clerk]
        assert mine == ["SET @exfil_application = 'crm-desk 4.2'"] + [s.sql for s in work.select(role=clerk)]
    (export,) = [e for e in queries if "INTO OUTFILE" in e["object"]]
    assert export["user"] == INSIDER and export["object"] == work.export.sql and export["retcode"] == "0"


def test_mariadb_portal_marks_the_end_user(my: tuple[PrivateMariaDB, Workload]) -> None:
    server, work = my
    queries = [e for e in server_audit(server) if e["op"] == "QUERY" and e["user"] == PORTAL]
    by_conn: dict[str, list[str]] = {}
    for e in queries:
        by_conn.setdefault(e["conn"], []).append(e["object"])
    sessions = sorted(by_conn.values())
    assert sessions == sorted(
        [f"SET @exfil_application = 'portal user={user}'"] + [s.sql for s in work.select(role=PORTAL, end_user=user)]
        for user in PORTAL_USERS)


def test_mariadb_failed_login(my: tuple[PrivateMariaDB, Workload]) -> None:
    server, _ = my
    failed = [e for e in server_audit(server) if e["op"] == "FAILED_CONNECT"]
    assert [(e["user"], e["host"], e["retcode"]) for e in failed] == [(INSIDER, "127.0.0.1", "1045")]
    server.wait_for_log(rf"\[Warning\] Access denied for user '{INSIDER}'@'127\.0\.0\.1' \(using password: YES\)",
                        path=server.error_log)


def test_mariadb_slow_log_rows(my: tuple[PrivateMariaDB, Workload]) -> None:
    server, work = my
    entries = slow_entries(server)
    (bulk,) = [e for e in entries if e["sql"] == BULK_SQL]
    assert (bulk["user"], bulk["Rows_sent"], bulk["Rows_examined"], bulk["Full_scan"]) == \
        (INSIDER, "5000", "5000", "Yes")
    (export,) = [e for e in entries if e["sql"] == work.export.sql]
    # INTO OUTFILE: the rows written count as sent (and affected); the client got none of them
    assert (export["Rows_sent"], export["Rows_affected"]) == ("5000", "5000")
    lookups = [e for e in entries if e["user"] == "clerk_li" and e["sql"].startswith("SELECT name, phone FROM")]
    assert len(lookups) == CLERKS["clerk_li"] and {e["Rows_sent"] for e in lookups} == {"1"}
    assert work.export_file is not None and len(work.export_file.read_text().splitlines()) == 5000


# --------------------------------------------------------------------------- lifecycle

def test_missing_installation_fails_clearly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="PostgreSQL 15 is not installed: missing .*initdb"):
        PrivatePostgres(bin_dir=tmp_path).start()
    with pytest.raises(DatabaseError, match="MariaDB is not installed"):
        PrivateMariaDB(server=str(tmp_path / "mariadbd")).start()
    monkeypatch.delenv(databases.SKIP_ENV, raising=False)
    with pytest.raises(pytest.fail.Exception, match=f"set {databases.SKIP_ENV}=1 to skip"):
        databases._start_or_fail(PrivatePostgres(bin_dir=tmp_path))
    monkeypatch.setenv(databases.SKIP_ENV, "1")
    with pytest.raises(pytest.skip.Exception):
        databases._start_or_fail(PrivatePostgres(bin_dir=tmp_path))


@pytest.mark.slow
def test_start_retries_when_the_port_is_taken(monkeypatch: pytest.MonkeyPatch, kept_dirs: list[Path]) -> None:
    with socket.socket() as taken:
        taken.bind((databases.HOST, 0))
        taken.listen()
        ports = iter([taken.getsockname()[1]])
        real = databases.free_port
        monkeypatch.setattr(databases, "free_port", lambda: next(ports, None) or real())
        with PrivatePostgres() as server:
            assert server.port != taken.getsockname()[1]
            assert server.run_sql(None, "SELECT 1;").stdout == "1\n"


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return bool(re.search(r"^State:\s+Z", state, re.M))  # a zombie waiting for a reaper is gone too


def _wait_gone(pid: int, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while not _gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.fixture
def kept_dirs() -> Iterator[list[Path]]:
    """Directories of servers started with keep=True, removed after the test; honours EXFIL_SKIP_DATABASES."""
    if os.environ.get(databases.SKIP_ENV) == "1":
        pytest.skip(f"{databases.SKIP_ENV}=1: private database servers not started")
    dirs: list[Path] = []
    yield dirs
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.slow
def test_stop_shuts_down_cleanly(kept_dirs: list[Path]) -> None:
    for server in (PrivatePostgres(keep=True), PrivateMariaDB(keep=True)):
        server.start()
        assert server.root is not None
        kept_dirs.append(server.root)
        pid = server.pid
        assert pid is not None and not _gone(pid)
        server.stop()
        assert _gone(pid) and not server.running
        if isinstance(server, PrivatePostgres):
            server.wait_for_log("database system is shut down")
        else:
            server.wait_for_log(r"mariadbd: Shutdown complete", path=server.error_log)


CHILD = """
import json, sys, time
from tests.databases import PrivateMariaDB, PrivatePostgres
servers = [PrivatePostgres(keep=True).start(), PrivateMariaDB(keep=True).start()]
print(json.dumps([[s.pid, str(s.root)] for s in servers]), flush=True)
time.sleep(600)
"""


@pytest.mark.slow
def test_servers_die_with_the_test_process(kept_dirs: list[Path]) -> None:
    """SIGKILL of the process that started them (no atexit, no teardown): PR_SET_PDEATHSIG still
    delivers each server's clean-shutdown signal."""
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parents[1])
    try:
        assert child.stdout is not None
        started = json.loads(child.stdout.readline() or "[]")
        kept_dirs.extend(Path(root) for _, root in started)
        assert len(started) == 2, "the child could not start both servers"
        assert not any(_gone(pid) for pid, _ in started)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    for pid, _ in started:
        assert _wait_gone(pid), f"server {pid} outlived the process that started it"
    pg_root, my_root = (Path(root) for _, root in started)
    assert "database system is shut down" in (pg_root / "log" / "postgresql.log").read_text()
    assert "Shutdown complete" in (my_root / "error.log").read_text()
    assert os.path.exists(pg_root)  # keep=True: the temporary directories are left to this test

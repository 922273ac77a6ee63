"""`poll-row-counts`: pg_stat_statements fills in the rows pgaudit logs as 0 (COPY TO, cursor FETCH).

Unit tests of the snapshot difference (no server), the psql output parser and the command
line (with a stand-in psql), then one test against a private PostgreSQL 15 with pgaudit and
pg_stat_statements preloaded: a real `COPY customers TO STDOUT` between two polls.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from detector.events import event_from_mapping
from streams.sources.pg_stat_statements import (Baseline, RowCountTracker, Snapshot, SnapshotError, StatementStats,
                                                classify, dsn_has_password, parse_snapshot)

COPY = "COPY customers TO STDOUT WITH (FORMAT csv)"
SELECT = "SELECT id, name, phone FROM customers WHERE id = $1"
BULK = "SELECT id, name, phone, id_card_no, bank_card FROM customers"


def _snap(t: float, *rows: tuple, stats_reset: str | None = "2026-11-01 00:00:00+00", dealloc: int | None = 0,
          server: str | None = "7713309534566268138:5432") -> Snapshot:
    """rows: (user, database, queryid, query, calls, rows[, toplevel])."""
    return Snapshot([StatementStats(*r) for r in rows], t, stats_reset, dealloc, server)


T0 = 1_795_000_000.0
REPO = Path(__file__).resolve().parents[1]          # `python -m detector.cli` runs this checkout


# -- the snapshot difference ----------------------------------------------------------

def test_first_poll_only_records_the_baseline():
    tracker = RowCountTracker()
    assert tracker.observe(_snap(T0, ("clerk_chen", "crm", 11, COPY, 3, 15_000))) == []
    assert tracker.baseline is not None and tracker.baseline.counters[("clerk_chen", "crm", 11, True)] == (3, 15_000)


def test_copy_to_is_counted_with_its_rows_and_plain_select_is_ignored():
    tracker = RowCountTracker()
    tracker.observe(_snap(T0, ("clerk_chen", "crm", 11, COPY, 1, 5000), ("clerk_li", "crm", 22, SELECT, 40, 40),
                          ("clerk_chen", "crm", 33, BULK, 0, 0)))
    events = tracker.observe(_snap(T0 + 10, ("clerk_chen", "crm", 11, COPY, 2, 10_000),
                                   ("clerk_li", "crm", 22, SELECT, 75, 75), ("clerk_chen", "crm", 33, BULK, 1, 5000)))
    assert events == [{"ts": "2026-11-18T11:06:50.000Z", "db_user": "clerk_chen", "action": "COPY", "database": "crm",
                       "rows": 5000, "statement": COPY, "source": "pg_stat_statements"}]
    for event in events:
        event_from_mapping(event)
    assert tracker.observe(_snap(T0 + 20, ("clerk_chen", "crm", 11, COPY, 2, 10_000))) == []   # no increase


def test_what_pgaudit_counts_itself_is_never_emitted():
    """COPY (query) TO: pgaudit logs the inner query with its rows; COPY FROM is a write; SELECT is counted."""
    statements = ["COPY (SELECT id, phone FROM customers WHERE id < $1) TO STDOUT", "COPY customers FROM STDIN",
                  "SELECT * FROM customers", "WITH x AS (SELECT 1) SELECT * FROM x", "INSERT INTO t SELECT * FROM s"]
    tracker = RowCountTracker()
    tracker.observe(_snap(T0, *[("u", "crm", i, q, 0, 0) for i, q in enumerate(statements)]))
    assert tracker.observe(_snap(T0 + 10, *[("u", "crm", i, q, 1, 99) for i, q in enumerate(statements)])) == []


def test_cursor_fetches_are_selects_and_a_declare_without_rows_is_silent():
    tracker = RowCountTracker()
    tracker.observe(_snap(T0))
    events = tracker.observe(_snap(T0 + 10, ("clerk_chen", "crm", 1, "DECLARE c CURSOR FOR SELECT * FROM customers", 1, 0),
                                   ("clerk_chen", "crm", 2, "FETCH 100 FROM c", 3, 300),
                                   ("clerk_chen", "crm", 3, "  /* batch */ fetch all from c", 1, 4700)))
    assert [(e["action"], e["rows"], e["statement"]) for e in events] == [
        ("SELECT", 300, "FETCH 100 FROM c"), ("SELECT", 4700, "  /* batch */ fetch all from c")]


def test_a_statement_new_since_the_previous_poll_counts_whole():
    tracker = RowCountTracker()
    tracker.observe(_snap(T0, ("clerk_li", "crm", 22, SELECT, 40, 40)))
    events = tracker.observe(_snap(T0 + 10, ("clerk_chen", "crm", 11, COPY, 1, 5000)))
    assert [(e["db_user"], e["rows"]) for e in events] == [("clerk_chen", 5000)]


def test_a_reset_entry_counts_from_the_reset_never_negative():
    """pg_stat_statements_reset(userid, dbid, queryid): that entry's counters go down."""
    tracker = RowCountTracker()
    tracker.observe(_snap(T0, ("clerk_chen", "crm", 11, COPY, 5, 25_000)))
    events = tracker.observe(_snap(T0 + 10, ("clerk_chen", "crm", 11, COPY, 1, 5000)))
    assert [e["rows"] for e in events] == [5000]          # what ran after the reset, not -20,000 nor 25,000 again
    assert tracker.observe(_snap(T0 + 20, ("clerk_chen", "crm", 11, COPY, 2, 10_000)))[0]["rows"] == 5000


def test_a_full_reset_counts_every_entry_from_zero():
    """pg_stat_statements_reset(): stats_reset changes, so even a counter that grew again counts whole."""
    tracker = RowCountTracker()
    tracker.observe(_snap(T0, ("clerk_chen", "crm", 11, COPY, 1, 5000)))
    events = tracker.observe(_snap(T0 + 10, ("clerk_chen", "crm", 11, COPY, 2, 10_000),
                                   stats_reset="2026-11-18 07:06:45+00"))
    assert [e["rows"] for e in events] == [10_000]


def test_an_evicted_statement_is_forgotten_and_counts_whole_when_it_returns():
    tracker = RowCountTracker()
    tracker.observe(_snap(T0, ("clerk_chen", "crm", 11, COPY, 4, 20_000)))
    observation = tracker.diff(_snap(T0 + 10, dealloc=3))                 # evicted (dealloc): gone
    assert observation.events == [] and any("evicted 3 entries" in n for n in observation.notes)
    tracker.accept(observation.baseline)
    assert tracker.baseline.counters == {}
    events = tracker.observe(_snap(T0 + 20, ("clerk_chen", "crm", 11, COPY, 1, 5000), dealloc=3))
    assert [e["rows"] for e in events] == [5000]


def test_toplevel_and_nested_entries_of_one_statement_are_one_event():
    tracker = RowCountTracker()
    tracker.observe(_snap(T0, ("svc", "crm", 11, COPY, 1, 10, True), ("svc", "crm", 11, COPY, 1, 10, False)))
    events = tracker.observe(_snap(T0 + 10, ("svc", "crm", 11, COPY, 2, 30, True), ("svc", "crm", 11, COPY, 3, 50, False)))
    assert [e["rows"] for e in events] == [60]


def test_users_and_databases_are_kept_apart():
    tracker = RowCountTracker()
    tracker.observe(_snap(T0))
    events = tracker.observe(_snap(T0 + 10, ("a", "crm", 11, COPY, 1, 7), ("b", "crm", 11, COPY, 1, 8),
                                   ("a", "hr", 11, COPY, 1, 9)))
    assert [(e["db_user"], e["database"], e["rows"]) for e in events] == [("a", "crm", 7), ("a", "hr", 9), ("b", "crm", 8)]


def test_another_server_starts_a_new_baseline():
    tracker = RowCountTracker()
    tracker.observe(_snap(T0, ("clerk_chen", "crm", 11, COPY, 1, 5000)))
    observation = tracker.diff(_snap(T0 + 10, ("clerk_chen", "crm", 11, COPY, 9, 45_000), server="other:5432",
                                     stats_reset="2025-01-01 00:00:00+00"))
    assert observation.events == [] and "different PostgreSQL server" in observation.notes[0]


def test_plain_rows_are_accepted_as_a_snapshot():
    tracker = RowCountTracker()
    tracker.observe([("u", "crm", 1, COPY, 1, 10)])
    assert tracker.observe([("u", "crm", 1, COPY, 2, 25)])[0]["rows"] == 15


def test_the_baseline_survives_a_round_trip_and_bad_state_names_no_statement():
    tracker = RowCountTracker()
    tracker.observe(_snap(T0, ("clerk_chen", "crm", -5298138137528560267, COPY, 1, 5000, False)))
    text = orjson.dumps(tracker.baseline.to_dict())
    restored = RowCountTracker(Baseline.from_dict(orjson.loads(text)))
    assert restored.observe(_snap(T0 + 10, ("clerk_chen", "crm", -5298138137528560267, COPY, 2, 10_000, False)))[0]["rows"] == 5000
    with pytest.raises(ValueError) as caught:
        Baseline.from_dict({"version": 1, "taken_at": T0, "entries": [["u", "crm", "11", True, 1, 1]]})
    assert "COPY" not in str(caught.value)
    with pytest.raises(ValueError):
        Baseline.from_dict({"version": 99})


@pytest.mark.parametrize(("query", "action"), [
    (COPY, "COPY"),
    ("/* hi */ copy customers (id, phone) to stdout", "COPY"),
    ("-- nightly\n  COPY public.customers TO '/tmp/c.csv'", "COPY"),
    ('copy "CRM"."Customers"("id")TO stdout', "COPY"),
    ("COPY only customers TO PROGRAM 'gzip > /tmp/c.gz'", "COPY"),
    ("COPY photo FROM STDIN", None),
    ("COPY customersto STDOUT", None),
    ("COPY (SELECT * FROM customers) TO STDOUT", None),
    ("FETCH FORWARD 500 FROM c", "SELECT"),
    ("DECLARE c BINARY NO SCROLL CURSOR WITH HOLD FOR SELECT * FROM customers", "SELECT"),
    ("SELECT * FROM customers", None),
    ("declared", None),
    ("", None),
])
def test_classify(query, action):
    assert classify(query) == action


# -- psql output, connection strings -----------------------------------------------------

def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _psql_output(rows: list[tuple], epoch: float = T0, stats_reset: str = "2026-11-01 00:00:00+00",
                 dealloc: int = 0, privileged: bool = True) -> str:
    lines = [f"I\t{epoch}\t{stats_reset}\t{dealloc}\t7713309534566268138:5432\t{str(privileged).lower()}\t\t"]
    for user, database, queryid, query, calls, nrows in rows:
        lines.append(f"S\t{queryid}\ttrue\t{calls}\t{nrows}\t{_b64(user)}\t{_b64(database)}\t{_b64(query)}")
    return "\n".join(lines) + "\n"


def test_parse_snapshot_keeps_tabs_and_newlines_of_a_query():
    query = "COPY customers\n\tTO STDOUT -- weird\tspacing"
    snapshot = parse_snapshot(_psql_output([("clerk_chen", "crm", -42, query, 2, 10_000)], dealloc=4))
    assert snapshot.taken_at == T0 and snapshot.dealloc == 4 and snapshot.server == "7713309534566268138:5432"
    assert snapshot.rows == [StatementStats("clerk_chen", "crm", -42, query, 2, 10_000, True)]
    assert snapshot.privileged


def test_parse_snapshot_rejects_junk_without_echoing_it():
    with pytest.raises(SnapshotError) as caught:
        parse_snapshot("I\t1\t\t0\tx\ttrue\t\t\nS\tnot-a-number\ttrue\t1\t1\tx\tx\tx\n")
    assert "not-a-number" not in str(caught.value)
    with pytest.raises(SnapshotError):
        parse_snapshot("")


@pytest.mark.parametrize(("dsn", "has"), [
    ("host=db port=5432 dbname=postgres user=exfil_poller", False),
    ("host=db password=secret user=x", True),
    ("host=db user=x  PASSWORD = 'secret'", True),
    ("postgresql://exfil_poller@db:5432/postgres", False),
    ("postgresql://exfil_poller:secret@db/postgres", True),
    ("postgres://db/postgres?user=x&password=secret", True),
    ("host=db passfile=/etc/exfil/pgpass user=x", False),
])
def test_dsn_password_detection(dsn, has):
    assert dsn_has_password(dsn) is has


# -- the command line, with a stand-in psql ------------------------------------------------

def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "detector.cli", "poll-row-counts", *args], capture_output=True,
                          text=True, timeout=120, env=env, cwd=REPO)


@pytest.fixture
def fake_psql(tmp_path: Path) -> tuple[Path, Path]:
    """A psql that prints the file named by $FAKE_PSQL_OUTPUT (and fails when it is missing)."""
    script = tmp_path / "psql"
    script.write_text("#!/bin/sh\n[ -f \"$FAKE_PSQL_OUTPUT\" ] || { echo 'psql: error: connection to server "
                      "at \"db\" failed: Connection refused' >&2; exit 2; }\ncat \"$FAKE_PSQL_OUTPUT\"\n")
    script.chmod(0o755)
    return script, tmp_path / "snapshot.txt"


def test_once_twice_emits_the_rows_between_the_polls(tmp_path: Path, fake_psql):
    psql, snapshot = fake_psql
    env = {**os.environ, "FAKE_PSQL_OUTPUT": str(snapshot)}
    out = tmp_path / "events.jsonl"
    args = ("--dsn", "host=db dbname=postgres user=exfil_poller", "--once", "--output", str(out), "--psql", str(psql))
    snapshot.write_text(_psql_output([("clerk_chen", "crm", 11, COPY, 1, 5000), ("clerk_li", "crm", 22, SELECT, 9, 9)]))
    first = _cli(*args, env=env)
    assert first.returncode == 0, first.stderr
    assert "baseline recorded" in first.stdout and out.read_text() == ""
    snapshot.write_text(_psql_output([("clerk_chen", "crm", 11, COPY, 2, 10_000), ("clerk_li", "crm", 22, SELECT, 19, 19)],
                                     epoch=T0 + 10))
    second = _cli(*args, env=env)
    assert second.returncode == 0, second.stderr
    events = [orjson.loads(line) for line in out.read_text().splitlines()]
    assert [(e["db_user"], e["action"], e["rows"], e["source"]) for e in events] == [
        ("clerk_chen", "COPY", 5000, "pg_stat_statements")]
    third = _cli(*args, env=env)                       # nothing new: nothing emitted, nothing repeated
    assert third.returncode == 0 and len(out.read_text().splitlines()) == 1
    assert (tmp_path / "events.jsonl.poll-state.json").exists()


def test_polling_loop_emits_between_polls_and_stops_on_sigterm(tmp_path: Path, fake_psql):
    import signal
    import time

    psql, snapshot = fake_psql
    out, state = tmp_path / "events.jsonl", tmp_path / "state.json"
    snapshot.write_text(_psql_output([("clerk_chen", "crm", 11, COPY, 1, 5000)]))
    proc = subprocess.Popen([sys.executable, "-m", "detector.cli", "poll-row-counts", "--dsn", "host=db",
                             "--interval", "0.2", "--output", str(out), "--state", str(state), "--psql", str(psql)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "FAKE_PSQL_OUTPUT": str(snapshot)})
    try:
        deadline = time.monotonic() + 30
        while not state.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        snapshot.write_text(_psql_output([("clerk_chen", "crm", 11, COPY, 3, 15_000)], epoch=T0 + 10))
        while not (out.exists() and out.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)                                 # a few more polls: nothing new, nothing repeated
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert [orjson.loads(line)["rows"] for line in out.read_text().splitlines()] == [10_000]
    assert "1 events (10,000 rows" in stdout


@pytest.mark.kafka
def test_events_go_to_kafka_keyed_by_account(tmp_path: Path, fake_psql, tansu, kafka_consumer_settings):
    import time

    from kafka import KafkaConsumer

    from streams.broker import create_topics

    create_topics(tansu.bootstrap_servers, {"db-access": 1})
    psql, snapshot = fake_psql
    env = {**os.environ, "FAKE_PSQL_OUTPUT": str(snapshot)}
    args = ("--dsn", "host=db", "--once", "--bootstrap-servers", tansu.bootstrap_servers, "--topic", "db-access",
            "--state", str(tmp_path / "state.json"), "--psql", str(psql))
    snapshot.write_text(_psql_output([("clerk_chen", "crm", 11, COPY, 1, 5000)]))
    assert _cli(*args, env=env).returncode == 0
    snapshot.write_text(_psql_output([("clerk_chen", "crm", 11, COPY, 2, 10_000), ("clerk_li", "crm", 2, "FETCH 50 FROM c", 1, 50)],
                                     epoch=T0 + 10))
    result = _cli(*args, env=env)
    assert result.returncode == 0, result.stderr
    consumer = KafkaConsumer("db-access", bootstrap_servers=tansu.bootstrap_servers, group_id="poll-test",
                             **kafka_consumer_settings)
    records, deadline = [], time.monotonic() + 30
    while len(records) < 2 and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
    consumer.close()
    found = sorted((r.key.decode(), orjson.loads(r.value)["action"], orjson.loads(r.value)["rows"]) for r in records)
    assert found == [("clerk_chen", "COPY", 5000), ("clerk_li", "SELECT", 50)]


def test_a_password_in_the_dsn_is_refused(tmp_path: Path):
    result = _cli("--dsn", "host=db user=x password=hunter2", "--once", "--output", str(tmp_path / "e.jsonl"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "exfil-detector poll-row-counts: error: --dsn must not carry a password (it would show in the process list): "
        "set PGPASSWORD or use ~/.pgpass"]
    assert "hunter2" not in result.stderr


def test_psql_failure_is_one_line(tmp_path: Path, fake_psql):
    psql, snapshot = fake_psql                          # no snapshot file: the stand-in fails like psql does
    result = _cli("--dsn", "host=db", "--once", "--output", str(tmp_path / "e.jsonl"), "--psql", str(psql),
                  env={**os.environ, "FAKE_PSQL_OUTPUT": str(snapshot)})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        'exfil-detector poll-row-counts: error: psql failed: psql: error: connection to server at "db" failed: '
        "Connection refused"]


@pytest.mark.parametrize(("args", "message"), [
    (("--dsn", "host=db", "--bootstrap-servers", "127.0.0.1:9"), "--bootstrap-servers needs --topic"),
    (("--dsn", "host=db", "--output", "{tmp}/e.jsonl", "--interval", "0"), "must be a positive number"),
    (("--dsn", "host=db", "--once", "--output", "{tmp}/e.jsonl", "--psql", "/nonexistent/psql"), "psql not found"),
])
def test_bad_usage_is_one_line(tmp_path: Path, args, message):
    result = _cli(*(a.format(tmp=tmp_path) for a in args))
    assert result.returncode in (1, 2) and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr


# -- against a real PostgreSQL ----------------------------------------------------------------

PGSS_SETTINGS = {
    "shared_preload_libraries": "'pgaudit,pg_stat_statements'",
    "pg_stat_statements.track": "all",
    "pg_stat_statements.track_utility": "on",
}
CUSTOMERS = 1234


@pytest.fixture(scope="module")
def pgss_server() -> Iterator:
    from tests.databases import PrivatePostgres, _start_or_fail

    server = _start_or_fail(PrivatePostgres(settings=PGSS_SETTINGS))
    try:
        server.run_sql(None, "CREATE EXTENSION pg_stat_statements;")           # in the database the poller reads
        server.run_sql(None, "CREATE DATABASE crm;")
        server.run_sql(None, "CREATE EXTENSION pgaudit;\n"
                             "CREATE TABLE customers (id integer PRIMARY KEY, name text, phone text);\n"
                             f"INSERT INTO customers SELECT g, 'customer ' || g, '138' || lpad(g::text, 8, '0') "
                             f"FROM generate_series(1, {CUSTOMERS}) g;\n", database="crm")
        server.create_role("clerk_chen")
        server.create_role("exfil_poller")
        server.run_sql(None, "GRANT SELECT ON customers TO clerk_chen;", database="crm")
        server.run_sql(None, "GRANT pg_read_all_stats TO exfil_poller;\n"
                             "ALTER ROLE exfil_poller SET pgaudit.log = 'none';")   # the poller's reads are not audited
        yield server
    finally:
        server.stop()


@pytest.mark.databases
def test_copy_rows_come_from_pg_stat_statements(pgss_server, tmp_path: Path):
    server = pgss_server
    dsn = f"host={server.host} port={server.port} dbname=postgres user=exfil_poller"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGPASSWORD"] = server.passwords["exfil_poller"]
    out = tmp_path / "row-counts.jsonl"
    args = ("--dsn", dsn, "--once", "--output", str(out), "--psql", str(server.bin_dir / "psql"))

    first = _cli(*args, env=env)
    assert first.returncode == 0, first.stderr
    assert "baseline recorded" in first.stdout

    done = server.run_sql("clerk_chen", "COPY customers TO STDOUT WITH (FORMAT csv);\n"
                                        "SELECT * FROM customers;\n"
                                        "COPY (SELECT id, phone FROM customers WHERE id <= 99) TO STDOUT;\n"
                                        "BEGIN;\nDECLARE c CURSOR FOR SELECT * FROM customers WHERE id <= 300;\n"
                                        "FETCH 100 FROM c;\nFETCH ALL FROM c;\nCLOSE c;\nCOMMIT;\n", database="crm")
    assert len(done.stdout.splitlines()) == CUSTOMERS + CUSTOMERS + 99 + 300
    # the premise: pgaudit logged that COPY with rows 0
    server.wait_for_log(r"user=clerk_chen .*AUDIT: SESSION,\d+,\d+,READ,COPY,,,COPY customers TO STDOUT.*,0$")

    second = _cli(*args, env=env)
    assert second.returncode == 0, second.stderr
    events = [orjson.loads(line) for line in out.read_text().splitlines()]
    for event in events:
        event_from_mapping(event)
    found = sorted((e["db_user"], e["database"], e["action"], e["rows"], e["statement"]) for e in events)
    assert found == [("clerk_chen", "crm", "COPY", CUSTOMERS, "COPY customers TO STDOUT WITH (FORMAT csv)"),
                     ("clerk_chen", "crm", "SELECT", 100, "FETCH 100 FROM c"),
                     ("clerk_chen", "crm", "SELECT", 200, "FETCH ALL FROM c")]
    assert all(e["source"] == "pg_stat_statements" for e in events)

    # the poller's own reads of pg_stat_statements are not audited (ALTER ROLE ... SET pgaudit.log = 'none')
    server.run_sql(None, "SELECT 'exfil-marker', count(*) FROM customers;", database="crm")
    server.wait_for_log(r"exfil-marker")
    assert not server.wait_for_log(r"user=exfil_poller .*AUDIT:", count=0)


@pytest.mark.databases
def test_reset_on_a_real_server_counts_from_the_reset(pgss_server):
    """The tracker with the psql reader directly: pg_stat_statements_reset() between two polls."""
    from streams.sources.pg_stat_statements import read_snapshot

    server = pgss_server
    dsn = f"host={server.host} port={server.port} dbname=postgres user=exfil_poller"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGPASSWORD"] = server.passwords["exfil_poller"]
    psql = str(server.bin_dir / "psql")
    tracker = RowCountTracker()
    server.run_sql("clerk_chen", "COPY customers TO STDOUT;", database="crm")
    assert tracker.observe(read_snapshot(dsn, psql, env=env)) == []
    server.run_sql(None, "SELECT pg_stat_statements_reset();")
    server.run_sql("clerk_chen", "COPY customers TO STDOUT;", database="crm")
    snapshot = read_snapshot(dsn, psql, env=env)
    assert snapshot.privileged and snapshot.server
    observation = tracker.diff(snapshot)
    assert [(e["db_user"], e["rows"]) for e in observation.events] == [("clerk_chen", CUSTOMERS)]
    assert any("reset" in note for note in observation.notes)

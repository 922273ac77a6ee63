"""`exfil-detector ship`: positions kept across restarts, rotation, truncation, dead letters,
JSONL and Kafka outputs, on the real pgaudit and MariaDB captures."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

from detector.events import AccessEvent, decode_event
from streams.ship import ShipError, ShipOptions, Shipper
from streams.sources import SourceSettings, make_adapter

SAMPLES = Path(__file__).parent / "data" / "samples"
PREFIX = "%m [%p] user=%u db=%d app=%a client=%h session=%c line=%l vxid=%v txid=%x tag=%i: "
STDERR_LINES = (SAMPLES / "pg15_pgaudit_stderr.log").read_bytes().splitlines(keepends=True)
CLEAN_CUTS = (36, 55, 91)       # after a disconnection: no statement spans the cut
MID_STATEMENT = 61              # between the OBJECT and the SESSION line of `SELECT * FROM customers;`


def expected_events(lines: list[bytes] = STDERR_LINES) -> list[dict]:
    adapter = make_adapter("pgaudit-stderr", SourceSettings(log_line_prefix=PREFIX))
    events, offset = [], 0
    for raw in lines:
        events += adapter.feed(raw.decode().rstrip("\n"), offset, len(raw)).events
        offset += len(raw)
    return events + adapter.flush().events


EVERYTHING = expected_events()


def options(log: Path, output: Path, **extra) -> ShipOptions:
    settings = {"format": "pgaudit-stderr", "path": str(log), "output": output,
                "source": SourceSettings(log_line_prefix=PREFIX), "poll_interval_s": 0.02, "idle_flush_s": 0.2,
                "commit_interval_s": 0.05}
    settings.update(extra)
    return ShipOptions(**settings)


def read_events(output: Path) -> list[dict]:
    if not output.exists():
        return []
    return [orjson.loads(line) for line in output.read_bytes().splitlines() if line.strip()]


def append(path: Path, lines: list[bytes]) -> None:
    with path.open("ab") as handle:
        handle.write(b"".join(lines))


class Following:
    """A shipper with --follow running in a thread."""

    def __init__(self, opts: ShipOptions) -> None:
        self.notes: list[str] = []
        self.stop = threading.Event()
        self.shipper = Shipper(opts, self.stop, warn=self.notes.append)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.shipper.run()
        except BaseException as exc:  # reported by finish()
            self.error = exc

    def wait_for(self, predicate, what: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert self.error is None, self.error
            assert time.monotonic() < deadline, f"timed out waiting for {what}; notes: {self.notes}"
            time.sleep(0.02)

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(20)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error


def test_shipping_then_restarting_with_appended_lines_neither_loses_nor_repeats(tmp_path):
    log, output = tmp_path / "postgresql.log", tmp_path / "events.jsonl"
    start = 0
    for cut in (*CLEAN_CUTS, len(STDERR_LINES)):
        append(log, STDERR_LINES[start:cut])
        Shipper(options(log, output)).run()
        start = cut
    assert read_events(output) == EVERYTHING
    assert len(read_events(output)) == 49


def test_a_followed_file_stopped_mid_statement_resumes_without_loss_or_repeat(tmp_path):
    log, output = tmp_path / "postgresql.log", tmp_path / "events.jsonl"
    append(log, STDERR_LINES[:MID_STATEMENT])
    before = len([e for e in EVERYTHING if e["ts"] < "2026-11-28T15:09:46.016"])
    first = Following(options(log, output, follow=True, idle_flush_s=600))
    first.wait_for(lambda: len(read_events(output)) >= before, "the events before the cut")
    first.finish()                       # the OBJECT line's statement is still waiting for its SESSION twin
    assert len(read_events(output)) == before
    append(log, STDERR_LINES[MID_STATEMENT:])
    second = Following(options(log, output, follow=True))
    second.wait_for(lambda: len(read_events(output)) >= len(EVERYTHING), "every event")
    second.finish()
    assert read_events(output) == EVERYTHING


def test_events_written_but_not_committed_before_a_crash_are_not_repeated(tmp_path):
    log, output = tmp_path / "postgresql.log", tmp_path / "events.jsonl"
    append(log, STDERR_LINES[:CLEAN_CUTS[1]])
    Shipper(options(log, output)).run()
    append(output, [b'{"ts":"2026-11-28T15:09:45.937Z","db_user":"half-written"}\n'])   # after the last commit
    append(log, STDERR_LINES[CLEAN_CUTS[1]:])
    Shipper(options(log, output)).run()
    assert read_events(output) == EVERYTHING


def test_following_a_rotated_log_finishes_the_old_file_then_reads_the_new_one(tmp_path):
    log, output = tmp_path / "postgresql.log", tmp_path / "events.jsonl"
    a, b, c = STDERR_LINES[:CLEAN_CUTS[0]], STDERR_LINES[CLEAN_CUTS[0]:CLEAN_CUTS[1]], STDERR_LINES[CLEAN_CUTS[1]:]
    append(log, a)
    running = Following(options(log, output, follow=True))
    running.wait_for(lambda: len(read_events(output)) == len(expected_events(a)), "the first file's events")
    os.rename(log, tmp_path / "postgresql.log.1")
    append(tmp_path / "postgresql.log.1", b)     # the server still wrote to the old file after the rename
    append(log, c)
    running.wait_for(lambda: len(read_events(output)) >= len(EVERYTHING), "every event")
    running.finish()
    assert read_events(output) == EVERYTHING
    assert any("rotated" in note for note in running.notes)


def test_following_a_truncated_log_reads_it_again_from_the_start(tmp_path):
    log, output = tmp_path / "postgresql.log", tmp_path / "events.jsonl"
    a, b = STDERR_LINES[:CLEAN_CUTS[2]], STDERR_LINES[CLEAN_CUTS[2]:]
    append(log, a)
    running = Following(options(log, output, follow=True))
    running.wait_for(lambda: len(read_events(output)) == len(expected_events(a)), "the events before truncation")
    with log.open("r+b") as handle:            # copytruncate
        handle.truncate(0)
    running.wait_for(lambda: any("truncated" in n for n in running.notes), "the truncation to be noticed")
    append(log, b)
    running.wait_for(lambda: len(read_events(output)) >= len(EVERYTHING), "every event")
    running.finish()
    assert read_events(output) == EVERYTHING


def test_a_log_rotated_while_the_shipper_was_stopped_is_finished_before_the_new_one(tmp_path):
    log, output = tmp_path / "postgresql.log", tmp_path / "events.jsonl"
    append(log, STDERR_LINES[:CLEAN_CUTS[0]])
    Shipper(options(log, output)).run()
    os.rename(log, tmp_path / "postgresql-20261128.log")
    append(tmp_path / "postgresql-20261128.log", STDERR_LINES[CLEAN_CUTS[0]:CLEAN_CUTS[2]])
    append(log, STDERR_LINES[CLEAN_CUTS[2]:])
    Shipper(options(log, output)).run()
    assert read_events(output) == EVERYTHING


def test_a_bad_line_goes_to_the_dead_letter_file_and_shipping_continues(tmp_path):
    log, output = tmp_path / "postgresql.log", tmp_path / "events.jsonl"
    junk = b"archive_command failed for card 4111111111111111\n"
    append(log, STDERR_LINES[:CLEAN_CUTS[1]] + [junk] + STDERR_LINES[CLEAN_CUTS[1]:])
    dead = tmp_path / "dead.jsonl"
    report = Shipper(options(log, output, dead_letter=dead)).run()
    assert read_events(output) == EVERYTHING and report.bad == 1
    [record] = read_events(dead)
    assert record["reason"] == "line does not match the configured log_line_prefix"
    assert record["raw"] == junk.decode().rstrip("\n") and "4111" not in record["reason"]
    assert record["source"] == str(log)


def test_every_shipped_event_passes_the_projects_own_decoder(tmp_path):
    output = tmp_path / "events.jsonl"
    for fmt, name in (("pgaudit-csv", "pg15_pgaudit_csvlog.csv"), ("pgaudit-json", "pg15_pgaudit_jsonlog.json"),
                      ("pgaudit-stderr", "pg15_pgaudit_pg_dump_stderr.log"),
                      ("mysql-enterprise-json", "mysql_enterprise_audit.json"),
                      ("aws-das", "aws_das_aurora_postgresql.jsonl"), ("aws-das", "aws_das_aurora_mysql.json")):
        Shipper(options(SAMPLES / name, output, format=fmt, position=tmp_path / f"{name}.pos")).run()
    Shipper(options(SAMPLES / "mariadb_server_audit.log", output, format="mariadb-audit",
                    slow_log=SAMPLES / "mariadb_slow.log", position=tmp_path / "m.pos")).run()
    lines = output.read_bytes().splitlines()
    assert len(lines) > 150
    for line in lines:
        assert isinstance(decode_event(line), AccessEvent), line


def test_mariadb_shipping_joins_the_slow_log_for_rows(tmp_path):
    output = tmp_path / "events.jsonl"
    Shipper(options(SAMPLES / "mariadb_server_audit.log", output, format="mariadb-audit",
                    slow_log=SAMPLES / "mariadb_slow.log")).run()
    rows = [e["rows"] for e in read_events(output) if e.get("statement") == "SELECT * FROM customers"]
    assert rows == [200, 200]
    position = orjson.loads((tmp_path / "events.jsonl.position.json").read_bytes())
    assert set(position["inputs"]) == {"main", "slow"}
    assert position["inputs"]["slow"]["offset"] == (SAMPLES / "mariadb_slow.log").stat().st_size


def test_a_position_file_for_another_format_is_refused(tmp_path):
    log, output = tmp_path / "postgresql.log", tmp_path / "events.jsonl"
    append(log, STDERR_LINES)
    Shipper(options(log, output)).run()
    with pytest.raises(ShipError, match="written for format pgaudit-stderr, not pgaudit-csv"):
        Shipper(options(log, output, format="pgaudit-csv"))


# -- the command line --------------------------------------------------------------

def _cli(*args: str, stdin: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "detector.cli", "ship", *args], input=stdin, capture_output=True,
                          timeout=60, cwd=cwd)


def test_ship_command_reads_standard_input(tmp_path):
    output = tmp_path / "events.jsonl"
    result = _cli("--format", "pgaudit-json", "--path", "-", "--output", str(output),
                  stdin=(SAMPLES / "pg15_pgaudit_jsonlog.json").read_bytes())
    assert result.returncode == 0, result.stderr
    assert len(read_events(output)) == 49 and b"shipped 49 events" in result.stdout


def test_ship_command_with_the_contracts_flags_and_a_slow_log(tmp_path):
    output = tmp_path / "events.jsonl"
    result = _cli("--format", "mariadb-audit", "--path", str(SAMPLES / "mariadb_server_audit.log"),
                  "--slow-log", str(SAMPLES / "mariadb_slow.log"), "--output", str(output))
    assert result.returncode == 0, result.stderr
    assert sum(e["rows"] is not None for e in read_events(output)) == 47


@pytest.mark.parametrize(("args", "message"), [
    (("--format", "pgaudit-stderr", "--path", "x.log", "--bootstrap-servers", "127.0.0.1:9"),
     "--bootstrap-servers needs --topic"),
    (("--format", "pgaudit-stderr", "--path", "missing.log", "--output", "o.jsonl"), "file not found: missing.log"),
    (("--format", "pgaudit-stderr", "--path", "-", "--slow-log", "s.log", "--output", "o.jsonl"),
     "--slow-log applies to mariadb-audit only"),
    (("--format", "aws-das", "--path", "-", "--output", "o.jsonl", "--identity-pattern", "user=(\\w+"),
     "identity pattern is not a valid regular expression"),
    (("--format", "pgaudit-stderr", "--path", "-", "--output", "o.jsonl", "--log-line-prefix", "[%p] "),
     "log_line_prefix must contain a timestamp"),
])
def test_ship_command_problems_end_with_one_line(tmp_path, args, message):
    result = _cli(*args, stdin=b"", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in lines[0]


def test_ship_command_requires_an_output(tmp_path):
    result = _cli("--format", "pgaudit-stderr", "--path", "x.log", cwd=tmp_path)
    assert result.returncode == 2 and "one of the arguments --output --bootstrap-servers is required" in result.stderr.decode()


# -- Kafka -------------------------------------------------------------------------

@pytest.mark.kafka
def test_ship_to_kafka_keys_events_by_employee_or_else_by_account(tmp_path, tansu, kafka_consumer_settings):
    from kafka import KafkaConsumer

    from streams.broker import create_topics
    from streams.config import KafkaConfig

    create_topics(tansu.bootstrap_servers, {"db-access": 1})
    log = tmp_path / "postgresql.log"
    append(log, [line.replace(b"app=billing-api", b"app=billing-api user=E042") for line in STDERR_LINES])
    opts = options(log, None, kafka=KafkaConfig(bootstrap_servers=tansu.bootstrap_servers), topic="db-access",
                   position=tmp_path / "pos.json",
                   source=SourceSettings(log_line_prefix=PREFIX, identity_pattern=r"user=(?P<employee>E\d+)"))
    report = Shipper(opts).run()
    assert report.events == 49
    consumer = KafkaConsumer("db-access", bootstrap_servers=tansu.bootstrap_servers, group_id="ship-test",
                             **kafka_consumer_settings)
    records, deadline = [], time.monotonic() + 30
    while len(records) < 49 and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
    consumer.close()
    assert len(records) == 49
    events = [orjson.loads(r.value) for r in records]
    assert all(isinstance(decode_event(r.value), AccessEvent) for r in records)
    keys = {(r.key.decode(), e["db_user"], e.get("employee_id")) for r, e in zip(records, events)}
    assert ("E042", "app_billing", "E042") in keys and ("alice", "alice", None) in keys
    assert all(key == (employee or user) for key, user, employee in keys)
    assert orjson.loads((tmp_path / "pos.json").read_bytes())["inputs"]["main"]["offset"] == log.stat().st_size

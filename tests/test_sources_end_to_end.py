"""Real database audit logs, shipped through a real broker into the running detector.

Private PostgreSQL 15 + pgaudit and MariaDB + server_audit + slow log run a workload
(tests/db_workload.py): clerks doing point look-ups, a shared portal account passing its
end user in the application name, and one insider who pulls the customers table in bulk
and exports it. `exfil-detector ship` reads the servers' real log files into the events
topic; `exfil-detector run` scores them. The bulk pull must raise an alert naming the
insider, the relation and the row count; the export must be flagged although pgaudit
logs it with rows 0; the ordinary users must raise nothing.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest
import yaml

from detector.artifacts import save_bundle
from detector.calendar import WorkCalendar
from detector.catalog import Catalog
from detector.directory import Directory
from detector.events import event_from_mapping
from detector.model import ForestSettings
from detector.pipeline import ReferenceData
from detector.rules import RuleSettings
from detector.training import train
from streams.broker import create_topics, free_port
from tests.db_workload import CLERKS, INSIDER, LOOKUP_SQL, PORTAL, PORTAL_SQL, PORTAL_USERS
from tests.service_harness import ALERTS, DEAD, EVENTS, ServiceProcess, read_topic, write_config

pytestmark = [pytest.mark.databases, pytest.mark.kafka, pytest.mark.slow]

EMPLOYEES = {"clerk_li": "E201", "clerk_wang": "E202", "clerk_zhao": "E203", INSIDER: "E204"}
SENSITIVE = {"name": "name", "phone": "phone", "id_card_no": "national_id", "address": "address",
             "bank_card": "financial"}
IDENTITY = r"user=(?P<employee>[A-Za-z0-9_]+)"


def _company(root: Path, now: datetime, relation: str) -> dict[str, Path]:
    """Directory, catalog, calendar (every recent day a working day, in UTC, so the test can run
    at any hour), and a model trained on four weeks of the same people's ordinary look-ups at
    this hour of the day."""
    lines = ["employee_id,department,role,db_accounts"] + [f"{e},cs,customer_service,{a}" for a, e in EMPLOYEES.items()]
    lines.append(f"S001,it,service_account,{PORTAL}")
    (root / "directory.csv").write_text("\n".join(lines) + "\n")
    catalog = {"objects": {relation: SENSITIVE}}
    (root / "catalog.yaml").write_text(yaml.safe_dump(catalog))
    days = [(now - timedelta(days=k)).date() for k in range(0, 30)]
    (root / "calendar.yaml").write_text(yaml.safe_dump({"timezone": "UTC", "workdays": [d.isoformat() for d in days]}))
    refs = ReferenceData(Directory.load(root / "directory.csv"), Catalog.load(root / "catalog.yaml"),
                         WorkCalendar("UTC", workdays=set(days)))
    events = sorted(_ordinary_history(now), key=lambda e: e.ts_ms)
    result = train(lambda: [events], refs, ForestSettings(n_estimators=30), RuleSettings())
    save_bundle(root / "model", result.anomaly, result.scoring.peers, result.states, result.summary,
                {"alert_budget_per_1000_days": 1.0})
    return {"model": root / "model", "directory": root / "directory.csv", "catalog": root / "catalog.yaml",
            "calendar": root / "calendar.yaml"}


def _ordinary_history(now: datetime) -> list:
    people = [(a, a, n, LOOKUP_SQL) for a, n in CLERKS.items()] + [(INSIDER, INSIDER, 10, LOOKUP_SQL)]
    people += [(PORTAL, user, n, PORTAL_SQL) for user, n in PORTAL_USERS.items()]
    events = []
    for days_ago in range(1, 29):
        start = now - timedelta(days=days_ago, minutes=10)
        for account, user, count, sql in people:
            for i in range(count):
                events.append(event_from_mapping({
                    "ts": (start + timedelta(seconds=15 * i)).isoformat(), "db_user": account, "action": "SELECT",
                    "database": "crm", "client_addr": "127.0.0.1", "rows": 1,
                    "statement": sql.format(id=1 + (i * 7919 + days_ago) % 5000),
                    **({"employee_id": EMPLOYEES[user]} if account == PORTAL else {})}))
    return events


def _ship(args: list[str], bootstrap: str, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "detector.cli", "ship", *args, "--bootstrap-servers", bootstrap,
                           "--topic", EVENTS, "--identity-pattern", IDENTITY,
                           "--position", str(tmp_path / "ship.position"),
                           "--dead-letter", str(tmp_path / "ship-dead.jsonl")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def _detector(tmp_path: Path, bootstrap: str, company: dict) -> ServiceProcess:
    config = write_config(tmp_path / "svc.toml", bootstrap, company, tmp_path / "state", free_port())
    config.write_text(config.read_text() + "\n[rules]\nbulk_read_rows = 2000\nbulk_read_critical_rows = 100000\n")
    return ServiceProcess(config, tmp_path / "svc.log").start()


def _alerts_after_shipping(tmp_path, tansu, workload_start: datetime, relation: str, ship_args: list[str]) -> list[dict]:
    bootstrap = tansu.bootstrap_servers
    create_topics(bootstrap, {EVENTS: 3, ALERTS: 1, DEAD: 1, "exfil-test-state-changelog": 3})
    company = _company(tmp_path, workload_start, relation)
    detector = _detector(tmp_path, bootstrap, company)
    detector.wait_ready(60)
    _ship(ship_args, bootstrap, tmp_path)
    shipped = len(read_topic(bootstrap, EVENTS, expected=10**9, timeout=3))
    deadline = time.monotonic() + 60
    while detector.metric("exfil_detector_events_consumed_total") < shipped and time.monotonic() < deadline:
        time.sleep(0.2)
    assert detector.metric("exfil_detector_events_consumed_total") == shipped > 100
    assert detector.metric("exfil_detector_events_rejected_total") == 0
    alerts = [orjson.loads(r.value) for r in read_topic(bootstrap, ALERTS, expected=10**9, timeout=3)]
    assert detector.terminate() == 0
    return alerts


def _assert_insider_alerted_and_nobody_else(alerts: list[dict], relation: str) -> None:
    assert alerts, "no alert at all"
    assert {a["employee_id"] for a in alerts} == {EMPLOYEES[INSIDER]}
    bulk = next(a for a in alerts if a["detector"] == "bulk_sensitive_read")
    assert bulk["evidence"]["trigger"]["rows"] == 5000
    assert relation in bulk["evidence"]["trigger"]["relations"]
    assert any(relation in r["detail"] and "5,000" in r["detail"] for r in bulk["reasons"]), bulk["reasons"]
    assert "sensitive_export" in {d for a in alerts for d in a["detectors"]}
    assert len({a["alert_id"] for a in alerts}) == 1              # one incident: the export joins the pull
    text = orjson.dumps(alerts).decode()
    assert not re.search(r"(=|IN \()\s*'?\d", text), "a literal from a statement reached an alert"


@pytest.mark.parametrize("log_format", ["pgaudit-stderr", "pgaudit-csv", "pgaudit-json"])
def test_pgaudit_log_shipped_into_the_detector_flags_bulk_pull_and_copy_export_only(
        tmp_path, tansu, postgres_crm, log_format):
    server, workload = postgres_crm
    start = datetime.now(timezone.utc)
    path = {"pgaudit-stderr": server.stderr_log, "pgaudit-csv": server.csv_log, "pgaudit-json": server.json_log}[log_format]
    alerts = _alerts_after_shipping(tmp_path, tansu, start, "crm.public.customers", [
        "--format", log_format, "--path", str(path), "--log-line-prefix", server.log_line_prefix])
    _assert_insider_alerted_and_nobody_else(alerts, "crm.public.customers")


def test_mariadb_audit_and_slow_log_shipped_into_the_detector_flag_bulk_pull_and_outfile_only(
        tmp_path, tansu, mariadb_crm):
    server, workload = mariadb_crm
    start = datetime.now(timezone.utc)
    alerts = _alerts_after_shipping(tmp_path, tansu, start, "crm.customers", [
        "--format", "mariadb-audit", "--path", str(server.audit_log), "--slow-log", str(server.log_files["slow"])])
    _assert_insider_alerted_and_nobody_else(alerts, "crm.customers")

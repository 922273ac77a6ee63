"""Small, readable builders of reference data and events for unit tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone

import numpy as np

from detector.calendar import WorkCalendar
from detector.catalog import Catalog
from detector.directory import Directory
from detector.events import AccessEvent, event_from_mapping
from detector.features import FEATURE_NAMES
from detector.model import AnomalyModel, ForestSettings, fit_model
from detector.pipeline import DetectionPipeline, ReferenceData, Scoring
from detector.rules import RuleSettings
from detector.training import _flat_peers, peer_baselines

SHANGHAI = timezone(timedelta(hours=8))
DIRECTORY_CSV = """employee_id,department,role,db_accounts,notice_date,start_date
E001,cs-sh,customer_service,zhang_wei,,2024-01-01
E002,cs-sh,customer_service,li_na,,2024-01-01
E003,cs-sh,customer_service,wang_fang,2026-09-20,2024-01-01
E004,bi,analyst,chen_jie;chen_jie_rpt,,2024-01-01
S001,it-platform,service_account,svc_billing,,
"""
CATALOG = {"objects": {"crm.public.customers": {"name": "name", "phone": "phone", "id_card_no": "national_id",
                                                 "address": "address", "bank_card": "financial"}}}


def reference_data() -> ReferenceData:
    calendar = WorkCalendar("Asia/Shanghai", holidays=set(), workdays=set())
    return ReferenceData(Directory.parse(DIRECTORY_CSV), Catalog.from_mapping(CATALOG), calendar)


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A local Shanghai time in September 2026 (1 Sep 2026 is a Tuesday)."""
    return datetime(2026, 9, day, hour, minute, second, tzinfo=SHANGHAI)


def event(when: datetime, db_user: str = "zhang_wei", statement: str | None = None, rows: int | None = 1,
          action: str = "SELECT", **fields) -> AccessEvent:
    record = {"ts": when.isoformat(), "db_user": db_user, "action": action, "database": "crm",
              "client_addr": "10.0.0.5", "application": "crm-web", **fields}
    if statement is not None:
        record["statement"] = statement
    if rows is not None:
        record["rows"] = rows
    return event_from_mapping(record)


def lookup(when: datetime, customer_id: int, db_user: str = "zhang_wei", **fields) -> AccessEvent:
    return event(when, db_user, f"SELECT name, phone FROM customers WHERE id = {customer_id}", rows=1, **fields)


def normal_day(day: int, db_user: str = "zhang_wei", lookups: int = 40, start_id: int = 1000) -> list[AccessEvent]:
    """A working day of scattered single-customer lookups between 09:00 and 17:00."""
    events = []
    for i in range(lookups):
        minute = (i * 480) // lookups
        customer = start_id + (i * 7919) % 5000   # scattered ids, never sequential
        events.append(lookup(at(day, 9 + minute // 60, minute % 60), customer, db_user))
    return events


def quiet_model() -> AnomalyModel:
    """A fitted forest whose threshold nothing reaches: only rules can alert."""
    matrix = np.abs(np.random.default_rng(0).normal(0, 0.5, (500, len(FEATURE_NAMES))))
    model = fit_model(matrix, np.array([f"p{i % 50}|{i // 50}" for i in range(500)]), ForestSettings(n_estimators=20))
    model.threshold = np.inf
    return model


WORKDAYS = [d for d in range(1, 26) if date(2026, 9, d).weekday() < 5]
TEST_DAY = 28                                               # Monday 28 September
COLLEAGUES = ("zhang_wei", "li_na")                         # E001 and E002, both customer service


def trained_colleagues(rules: RuleSettings, extra: Callable[[int, str], list[AccessEvent]] | None = None
                       ) -> DetectionPipeline:
    """A pipeline that learnt a month of both colleagues' name-and-phone lookups (plus `extra(day, user)`),
    own and peer baselines, with a forest nothing reaches: only rules alert."""
    refs = reference_data()
    history = DetectionPipeline(refs, Scoring(peers=_flat_peers()))
    for day in WORKDAYS:
        for user in COLLEAGUES:
            history.process(sorted(normal_day(day, user) + (extra(day, user) if extra else []), key=lambda e: e.ts_ms))
    history.finish()
    pipeline = DetectionPipeline(refs, Scoring(peers=peer_baselines(history.states, refs.directory),
                                               anomaly=quiet_model()), rules)
    pipeline.restore(history.states)
    return pipeline

"""write_workload(): the six files of a workload, in the contract's formats.

The only module of the simulator that touches the file system.
"""

from __future__ import annotations

import csv
from pathlib import Path

import orjson
import yaml

from detector.simulate.engine import Workload

DIRECTORY_COLUMNS = ("employee_id", "department", "role", "db_accounts", "notice_date", "start_date", "end_date")


def write_workload(workload: Workload, out_dir: Path) -> None:
    """train.jsonl, test.jsonl, directory.csv, catalog.yaml, calendar.yaml, labels.jsonl into `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "train.jsonl", "wb") as fh:
        workload.train_events.write(fh)
    with open(out / "test.jsonl", "wb") as fh:
        workload.test_events.write(fh)
    with open(out / "directory.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=DIRECTORY_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(workload.directory)
    (out / "catalog.yaml").write_text(
        "# Sensitivity catalog (contract section 3): database.schema.table -> column -> category.\n"
        "# MariaDB relations repeat the database as the schema: logistics.logistics.waybills.\n"
        + yaml.safe_dump(workload.catalog, sort_keys=False, allow_unicode=True), encoding="utf-8")
    (out / "calendar.yaml").write_text(
        "# Working calendar (contract section 4): public holidays and make-up workdays.\n"
        + yaml.safe_dump(workload.calendar, sort_keys=False, allow_unicode=True), encoding="utf-8")
    with open(out / "labels.jsonl", "wb") as fh:
        for label in workload.labels:
            fh.write(orjson.dumps(label) + b"\n")

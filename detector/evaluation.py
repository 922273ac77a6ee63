"""Scoring a detector's alerts against labelled incidents (contract section 6).

An incident is detected when an alert for its employee has `detected_at` within
[start - 1 h, end + 24 h]. Every other alert is false; false alerts are counted
as distinct (employee, local day) pairs per 1,000 active employee-days.
Revisions of one alert (same `alert_id`) count once, at their first detection.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from statistics import median

from detector.calendar import WorkCalendar
from detector.events import parse_ts

BEFORE_MS = 3600 * 1000
AFTER_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class Incident:
    incident_id: str
    employee_id: str
    scenario: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class Detection:
    employee_id: str
    detected_ms: int


@dataclass
class Evaluation:
    name: str
    incidents: int
    detected: int
    false_alert_days: int
    employee_days: int
    times_to_detect_s: list[float] = field(default_factory=list)
    by_scenario: dict[str, dict] = field(default_factory=dict)

    @property
    def recall(self) -> float:
        return self.detected / self.incidents if self.incidents else 0.0

    @property
    def false_per_1000(self) -> float:
        return 1000.0 * self.false_alert_days / self.employee_days if self.employee_days else 0.0

    @property
    def median_ttd_s(self) -> float | None:
        return median(self.times_to_detect_s) if self.times_to_detect_s else None

    def to_dict(self) -> dict:
        return {"detector": self.name, "incidents": self.incidents, "detected": self.detected,
                "recall": round(self.recall, 4), "false_alert_days": self.false_alert_days,
                "employee_days": self.employee_days, "false_alerts_per_1000_employee_days": round(self.false_per_1000, 3),
                "median_time_to_detect_s": self.median_ttd_s, "by_scenario": self.by_scenario}


def incidents_from_labels(labels: list[dict]) -> list[Incident]:
    return [Incident(str(r["incident_id"]), str(r["employee_id"]), str(r["scenario"]),
                     parse_ts(r["start"]), parse_ts(r["end"])) for r in labels]


def detections_from_alerts(alerts: list[dict]) -> list[Detection]:
    """One detection per alert record (a revision included) at its detected_at, as the contract
    counts them; records of the same employee at the same moment count once."""
    seen = {(str(a["employee_id"]), parse_ts(a["detected_at"])) for a in alerts}
    return [Detection(employee, ms) for employee, ms in sorted(seen)]


def evaluate(name: str, incidents: list[Incident], detections: list[Detection], employee_days: int,
             calendar: WorkCalendar) -> Evaluation:
    by_employee: dict[str, list[Detection]] = defaultdict(list)
    for detection in detections:
        by_employee[detection.employee_id].append(detection)
    matched: set[int] = set()
    result = Evaluation(name, len(incidents), 0, 0, employee_days)
    scenarios: dict[str, dict] = defaultdict(lambda: {"incidents": 0, "detected": 0, "ttd_s": []})
    for incident in incidents:
        hits = [d for d in by_employee.get(incident.employee_id, [])
                if incident.start_ms - BEFORE_MS <= d.detected_ms <= incident.end_ms + AFTER_MS]
        matched.update(id(d) for d in hits)
        row = scenarios[incident.scenario]
        row["incidents"] += 1
        if hits:
            ttd = max(0.0, (min(d.detected_ms for d in hits) - incident.start_ms) / 1000.0)
            result.detected += 1
            result.times_to_detect_s.append(ttd)
            row["detected"] += 1
            row["ttd_s"].append(ttd)
    false_days = {(d.employee_id, calendar.local(d.detected_ms).day) for d in detections if id(d) not in matched}
    result.false_alert_days = len(false_days)
    result.by_scenario = {k: {"incidents": v["incidents"], "detected": v["detected"],
                              "median_time_to_detect_s": median(v["ttd_s"]) if v["ttd_s"] else None}
                          for k, v in sorted(scenarios.items())}
    return result


def format_table(results: list[Evaluation]) -> str:
    """Detectors side by side: overall figures, then recall per scenario."""
    header = f"{'detector':<26}{'recall':>9}{'detected':>10}{'false/1000 emp-days':>21}{'median TTD':>13}"
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(f"{r.name:<26}{r.recall:>9.1%}{f'{r.detected}/{r.incidents}':>10}"
                     f"{r.false_per_1000:>21.2f}{_duration(r.median_ttd_s):>13}")
    scenarios = sorted({s for r in results for s in r.by_scenario})
    lines += ["", f"{'scenario':<24}" + "".join(f"{r.name[:22]:>24}" for r in results)]
    for scenario in scenarios:
        cells = []
        for r in results:
            row = r.by_scenario.get(scenario, {"incidents": 0, "detected": 0, "median_time_to_detect_s": None})
            cells.append(f"{row['detected']}/{row['incidents']} {_duration(row['median_time_to_detect_s'])}")
        lines.append(f"{scenario:<24}" + "".join(f"{c:>24}" for c in cells))
    return "\n".join(lines)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}min"
    return f"{seconds / 3600:.1f}h"

"""Diagnostics: for each labelled incident, the highest model score the employee got
on its days (and the day after), against the threshold, with the top features: the
rows the pipeline really scored (cohort-adjusted, sustained excess included). For
tuning, not for CI.

    python benchmarks/incident_scores.py WORKLOAD_DIR MODEL_DIR
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from detector.artifacts import load_bundle
from detector.calendar import WorkCalendar
from detector.catalog import Catalog
from detector.directory import Directory
from detector.evaluation import incidents_from_labels
from detector.features import FEATURE_NAMES
from detector.pipeline import DetectionPipeline, ReferenceData
from streams.files import DeadLetterFile, read_event_batches, read_jsonl


def main(workload: Path, model_dir: Path) -> None:
    refs = ReferenceData(Directory.load(workload / "directory.csv"), Catalog.load(workload / "catalog.yaml"),
                         WorkCalendar.load(workload / "calendar.yaml"))
    bundle = load_bundle(model_dir)
    pipeline = DetectionPipeline(refs, bundle.scoring, collect_snapshots=True)   # the rows it really scores
    pipeline.restore(bundle.states)
    for batch in read_event_batches(workload / "test.jsonl", DeadLetterFile(None)):
        pipeline.process(batch)
    pipeline.finish()
    matrix = np.vstack(pipeline.collected_rows).astype(float)
    scores = bundle.scoring.anomaly.score(matrix)
    rows: dict[str, list] = defaultdict(list)          # employee -> (day, score, feature row)
    for label, score, row in zip(pipeline.collected_days, scores, matrix):
        key, day = label.rsplit("|", 1)
        rows[pipeline.states[key].employee_id].append((int(day), score, row))
    threshold = bundle.scoring.anomaly.threshold
    print(f"threshold {threshold:.4f}")
    for incident in incidents_from_labels(read_jsonl(workload / "labels.jsonl")):
        first, last = (refs.calendar.local(ms).day for ms in (incident.start_ms, incident.end_ms))
        window = [r for r in rows[incident.employee_id] if first <= r[0] <= last + 1]
        if not window:
            print(f"{incident.incident_id} {incident.scenario:22} no snapshots")
            continue
        best = max(window, key=lambda r: r[1])
        top = np.argsort(-best[2])[:4]
        features = ", ".join(f"{FEATURE_NAMES[i]}={best[2][i]:.2f}" for i in top if best[2][i] > 0)
        mark = "HIT " if best[1] > threshold else "miss"
        print(f"{incident.incident_id} {incident.scenario:22} {mark} {best[1]:.4f}  {features}")
    normal = sorted((max(r[1] for r in v), k) for k, v in rows.items())[-8:]
    print("highest employee maxima:", [(k, round(s, 4)) for s, k in normal])


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))

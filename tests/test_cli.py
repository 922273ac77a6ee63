"""The command line: every failure is one line naming the problem, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "detector.cli", *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("train", "--events", "nope.jsonl"), "the following arguments are required"),
        (("simulate", "--out", "x", "--employees", "-3"), "must be a positive integer"),
        (("frobnicate",), "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_flags_end_with_one_line(args, message):
    result = _run(*args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr


def test_missing_input_file_is_named(tmp_path: Path):
    result = _run("train", "--events", str(tmp_path / "missing.jsonl"), "--directory", "d.csv", "--catalog", "c.yaml",
                  "--calendar", "k.yaml", "--out", str(tmp_path / "m"))
    assert result.returncode == 1
    assert result.stderr.strip() == f"exfil-detector train: error: --events {tmp_path / 'missing.jsonl'}: file not found"


def test_missing_model_directory_is_named(tmp_path: Path):
    for name in ("e.jsonl", "d.csv", "c.yaml", "k.yaml"):
        (tmp_path / name).write_text("")
    result = _run("replay", "--model", str(tmp_path / "nomodel"), "--events", str(tmp_path / "e.jsonl"),
                  "--directory", str(tmp_path / "d.csv"), "--catalog", str(tmp_path / "c.yaml"),
                  "--calendar", str(tmp_path / "k.yaml"), "--alerts-out", str(tmp_path / "a.jsonl"))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_broken_config_names_the_key(tmp_path: Path):
    config = tmp_path / "bad.toml"
    config.write_text('[kafka]\nsession_timeout_ms = "soon"\n')
    result = _run("run", "--config", str(config))
    assert result.returncode == 1
    assert "kafka.session_timeout_ms: expected int" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("key, value", [("sustained_excess", "-1.0"), ("unfamiliar_data", "-1.0"),
                                        ("unfamiliar_new_columns", "-1.0"), ("paging", "-1.0"),
                                        ("out_of_scope_share", "-1.0"), ("off_hours_new_source_rows", "-1"),
                                        ("outsized_read_times", "-1.0"), ("new_query_read_times", "-1.0"),
                                        ("new_high_value_column_statements", "-1")])
def test_a_negative_rule_limit_is_refused_naming_the_key(tmp_path: Path, key: str, value: str):
    config = tmp_path / "bad.toml"
    config.write_text(f"[rules]\n{key} = {value}\n")
    result = _run("run", "--config", str(config))
    assert result.returncode == 1
    assert f"config key rules.{key}: must be >= 0" in result.stderr

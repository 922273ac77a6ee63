"""Shared loading helpers for the three reference inputs (directory, catalog, calendar).

A broken input file is a configuration error, not a crash: `InputError` carries a
message naming the file, the line or key, and what is wrong.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import yaml


class InputError(ValueError):
    """A reference input (directory, catalog, calendar, model) is missing or malformed."""


def read_text(path: Path | str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{what} file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {what} file {path}: {exc}") from None


def load_yaml_mapping(path: Path | str, what: str) -> dict:
    try:
        data = yaml.safe_load(read_text(path, what))
    except yaml.YAMLError as exc:
        raise InputError(f"{what} file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"{what} file {path} must be a YAML mapping at the top level")
    return data


def parse_date(value: object, where: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise InputError(f"{where}: {str(value)[:40]!r} is not an ISO date (YYYY-MM-DD)") from None

"""The behaviour counters kept for every employee, by index.

Counters are plain float lists indexed by these constants: cheap to update on
the hot path, cheap to copy into a snapshot and to stack into a numpy matrix.
"""

from __future__ import annotations

from detector.catalog import CATEGORIES

COUNTER_MEANINGS: dict[str, str] = {
    "statements": "statements run",
    "rows": "rows returned or affected (where the source reports them)",
    "sensitive_rows": "rows read from statements that read personal-data columns",
    "national_id_rows": "rows read that carry national ID numbers",
    "phone_rows": "rows read that carry phone numbers",
    "address_rows": "rows read that carry addresses",
    "financial_rows": "rows read that carry bank cards or other financial data",
    "name_rows": "rows read that carry personal names",
    "sensitive_statements": "statements reading personal-data columns",
    "sensitive_exports": "exports (COPY TO, INTO OUTFILE, dump tools) of relations with personal data",
    "unbounded_sensitive_reads": "reads of personal data with neither WHERE nor LIMIT",
    "unknown_row_sensitive_reads": "reads of personal data whose row count the source cannot tell",
    "sensitive_point_lookups": "single-key lookups in relations with personal data",
    "sequential_key_lookups": "lookups whose key follows the previous one (enumeration)",
    "offset_pages": "pages of personal data past the first (LIMIT/OFFSET or keyset)",
    "distinct_sensitive_relations": "distinct relations with personal data read",
    "distinct_sensitive_columns": "distinct personal-data columns read",
    "off_hours_statements": "statements outside the calendar's working hours or on days off",
    "off_hours_sensitive_rows": "personal-data rows read outside working hours",
    "rare_hour_statements": "statements at an hour of day this person rarely works",
    "new_relations": "relations never read before by this person",
    "new_sensitive_columns": "personal-data columns never read before by this person",
    "new_column_statements": "statements reading a personal-data column this person first read today",
    "new_column_rows": "rows read from personal-data columns this person first read today",
    "new_sources": "client addresses or applications never used before by this person",
    "new_source_sensitive_rows": "personal-data rows read from a never-seen address or application",
    "out_of_scope_rows": "personal-data rows read with a filter value this person does not usually use in that "
                         "statement (another city, station or branch than their own)",
    "failed_statements": "statements that failed",
    "failed_logins": "failed logins",
}
COUNTER_NAMES: tuple[str, ...] = tuple(COUNTER_MEANINGS)
N_COUNTERS = len(COUNTER_NAMES)
INDEX = {name: i for i, name in enumerate(COUNTER_NAMES)}

STATEMENTS = INDEX["statements"]
ROWS = INDEX["rows"]
SENSITIVE_ROWS = INDEX["sensitive_rows"]
CATEGORY_ROWS = {c: INDEX[f"{c}_rows"] for c in CATEGORIES}
SENSITIVE_STATEMENTS = INDEX["sensitive_statements"]
SENSITIVE_EXPORTS = INDEX["sensitive_exports"]
UNBOUNDED = INDEX["unbounded_sensitive_reads"]
UNKNOWN_ROWS = INDEX["unknown_row_sensitive_reads"]
POINT_LOOKUPS = INDEX["sensitive_point_lookups"]
SEQUENTIAL_LOOKUPS = INDEX["sequential_key_lookups"]
OFFSET_PAGES = INDEX["offset_pages"]
DISTINCT_RELATIONS = INDEX["distinct_sensitive_relations"]
DISTINCT_COLUMNS = INDEX["distinct_sensitive_columns"]
OFF_HOURS = INDEX["off_hours_statements"]
OFF_HOURS_ROWS = INDEX["off_hours_sensitive_rows"]
RARE_HOUR = INDEX["rare_hour_statements"]
NEW_RELATIONS = INDEX["new_relations"]
NEW_COLUMNS = INDEX["new_sensitive_columns"]
NEW_COLUMN_STATEMENTS = INDEX["new_column_statements"]
NEW_COLUMN_ROWS = INDEX["new_column_rows"]
NEW_SOURCES = INDEX["new_sources"]
NEW_SOURCE_ROWS = INDEX["new_source_sensitive_rows"]
OUT_OF_SCOPE_ROWS = INDEX["out_of_scope_rows"]
FAILED = INDEX["failed_statements"]
FAILED_LOGINS = INDEX["failed_logins"]


def zeros() -> list[float]:
    return [0.0] * N_COUNTERS

"""What one statement reads, resolved against the sensitivity catalog.

An `AccessProfile` is the statement's shape (from `sql`) joined with the catalog:
which relations and personal-data columns it reads, whether it exports, pages or
looks up a single key. Profiles are cached by (database, fingerprint, objects,
columns), so a repeated statement shape costs one dictionary look-up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from detector.catalog import Catalog, SensitiveRelation
from detector.counters import CATEGORY_ROWS
from detector.events import AccessEvent
from detector.sql import StatementAnalyzer, StatementShape

READ_ACTIONS = frozenset({"SELECT", "COPY", "EXPORT"})
DUMP_TOOLS = ("pg_dump", "pg_dumpall", "mysqldump", "mariadb-dump", "mydumper")
_NO_LITERALS: tuple[str, ...] = ()
HIGH_VALUE_CATEGORIES = frozenset({"national_id", "financial"})   # ID-card numbers and bank cards: what gangs pay most for


@dataclass(frozen=True, slots=True)
class AccessProfile:
    fingerprint_id: str | None
    fingerprint: str | None
    relations: tuple[str, ...]              # as written, or catalog names when resolved
    sensitive_relations: tuple[str, ...]    # catalog names
    sensitive_columns: tuple[str, ...]      # relation.column
    category_counters: tuple[int, ...]      # counter index per category of personal data read
    categories: tuple[str, ...]
    reads_personal_data: bool
    is_export: bool
    unbounded: bool
    aggregate: bool
    point_lookup: bool
    key_literal_index: int | None
    offset_literal_index: int | None
    keyset_literal_index: int | None = None
    open_ended: bool = False                # a read of personal data as large as the table lets it be (`_open_ended`)
    high_value_columns: tuple[str, ...] = ()   # relation.column of a `HIGH_VALUE_CATEGORIES` category
    reads_financial: bool = False           # a month's close reads whole months of these: payments, refunds
    reads_national_id: bool = False         # ... and never needs these: ID-card numbers


class AccessProfiler:
    def __init__(self, catalog: Catalog, analyzer: StatementAnalyzer | None = None, max_profiles: int = 200_000) -> None:
        self.catalog = catalog
        self.analyzer = analyzer or StatementAnalyzer()
        self._profiles: dict[tuple, AccessProfile] = {}
        self.fingerprints: dict[str, str] = {}   # fingerprint id -> literal-free text, for evidence
        self.new_fingerprints: dict[str, str] = {}   # seen since the last checkpoint took them
        self._max_profiles = max_profiles

    def profile(self, event: AccessEvent) -> tuple[AccessProfile, tuple[str, ...]]:
        """The event's profile and the statement's literals (for key arithmetic only; never stored)."""
        shape, literals = (None, _NO_LITERALS) if event.statement is None else self.analyzer.analyze(event.statement)
        key = (event.database, shape.fingerprint if shape else None, event.objects, event.columns, event.action, event.application)
        found = self._profiles.get(key)
        if found is None:
            if len(self._profiles) >= self._max_profiles:
                self._profiles.clear()
                self.fingerprints.clear()
            found = self._profiles[key] = self._build(event, shape)
            if shape is not None and shape.fingerprint_id not in self.fingerprints:
                self.fingerprints[shape.fingerprint_id] = shape.fingerprint
                self.new_fingerprints[shape.fingerprint_id] = shape.fingerprint
        return found, literals

    def drain_new_fingerprints(self) -> dict[str, str]:
        """Fingerprint texts first seen since the last call: saved so that evidence after a
        restart or a partition move still shows what an id means."""
        new, self.new_fingerprints = self.new_fingerprints, {}
        return new

    def _build(self, event: AccessEvent, shape: StatementShape | None) -> AccessProfile:
        names = event.objects if event.objects else (shape.relations if shape else ())
        resolved = {name: self.catalog.resolve(event.database, name) for name in names}
        sensitive = [r for r in dict.fromkeys(resolved.values()) if r is not None]
        columns = _columns_read(event, shape, resolved, sensitive)
        categories = sorted({rel.columns[col] for rel, col in columns})
        is_read = event.action in READ_ACTIONS or (shape is not None and shape.action in READ_ACTIONS)
        exports = _is_export(event, shape)
        reads_personal = bool(columns) and (is_read or exports)
        return AccessProfile(
            fingerprint_id=shape.fingerprint_id if shape else None,
            fingerprint=shape.fingerprint if shape else None,
            relations=tuple(r.name if r else n for n, r in resolved.items()),
            sensitive_relations=tuple(r.name for r in sensitive),
            sensitive_columns=tuple(sorted({f"{rel.name}.{col}" for rel, col in columns})),
            category_counters=tuple(CATEGORY_ROWS[c] for c in categories if c in CATEGORY_ROWS),
            categories=tuple(categories),
            reads_personal_data=reads_personal,
            is_export=exports and bool(sensitive),
            unbounded=reads_personal and shape is not None and not (shape.has_where or shape.has_limit or shape.is_aggregate),
            aggregate=shape is not None and shape.is_aggregate,
            point_lookup=reads_personal and shape is not None and shape.key_column is not None,
            key_literal_index=shape.key_literal_index if shape else None,
            offset_literal_index=shape.offset_literal_index if shape else None,
            keyset_literal_index=shape.keyset_literal_index if reads_personal and shape else None,
            open_ended=reads_personal and not exports and _open_ended(shape),
            high_value_columns=tuple(sorted({f"{rel.name}.{col}" for rel, col in columns
                                             if rel.columns[col] in HIGH_VALUE_CATEGORIES})),
            reads_financial="financial" in categories,
            reads_national_id="national_id" in categories,
        )


_IDENTIFIER = re.compile(r"(^|_)(id|no|key|uuid|code|phone|mobile|email)$|card")


def _open_ended(shape: StatementShape | None) -> bool:
    """Whether a read has no LIMIT and no equality on an identifier-like column: its size is
    whatever the table holds for a filter such as a city or a status. No schema tells which
    columns are keys, so the column's name decides (`id`, `*_id`, `*_no`, a phone, a card, ...)."""
    if shape is None or shape.has_limit or shape.is_aggregate:
        return False
    return shape.key_column is None or _IDENTIFIER.search(shape.key_column) is None


def _is_export(event: AccessEvent, shape: StatementShape | None) -> bool:
    if event.action in ("COPY", "EXPORT") and (shape is None or shape.action != "COPY" or shape.is_export):
        return True
    if shape is not None and shape.is_export:
        return True
    app = (event.application or "").lower()
    return any(tool in app for tool in DUMP_TOOLS) and event.action in READ_ACTIONS


def _columns_read(
    event: AccessEvent,
    shape: StatementShape | None,
    resolved: dict[str, SensitiveRelation | None],
    sensitive: list[SensitiveRelation],
) -> list[tuple[SensitiveRelation, str]]:
    """Personal-data columns read, as (relation, column) pairs."""
    if not sensitive:
        return []
    if event.columns:
        refs = [_split_column(c) for c in event.columns]
    elif shape is not None and (shape.columns or shape.star_relations):
        refs = list(shape.columns) + [(r, "*") for r in shape.star_relations]
    else:
        refs = [(None, "*")]  # nothing says which columns: assume the whole relation
    found: list[tuple[SensitiveRelation, str]] = []
    for owner, column in refs:
        targets = sensitive if owner is None else [_owner(owner, resolved, sensitive)]
        for relation in targets:
            if relation is None:
                continue
            if column == "*":
                found.extend((relation, c) for c in relation.columns)
            elif column in relation.columns:
                found.append((relation, column))
    return list(dict.fromkeys(found))


def _owner(owner: str, resolved: dict[str, SensitiveRelation | None], sensitive: list[SensitiveRelation]) -> SensitiveRelation | None:
    if owner in resolved:
        return resolved[owner]
    for relation in sensitive:
        if relation.name == owner or relation.name.endswith("." + owner):
            return relation
    return None


def _split_column(column: str) -> tuple[str | None, str]:
    column = column.lower()
    if "." in column:
        owner, name = column.rsplit(".", 1)
        return owner, name
    return None, column

"""The sensitivity catalog: which columns of which relations hold personal data.

Statements name relations as they were written (`customers`, `public.customers`,
`crm.public.customers`, MariaDB's `shop.customers`); `resolve` maps such a name,
with the event's database, to the catalog's `database.schema.table` entry. The
answer is cached: the set of names in use is small.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from detector.inputs import InputError, load_yaml_mapping

CATEGORIES = ("national_id", "phone", "address", "financial", "name")


@dataclass(frozen=True, slots=True, eq=False)   # identity: one object per catalog entry
class SensitiveRelation:
    name: str                      # database.schema.table
    columns: dict[str, str]        # column -> category

    @property
    def database(self) -> str:
        return self.name.split(".", 1)[0]


class Catalog:
    def __init__(self, relations: list[SensitiveRelation]) -> None:
        self.relations = {r.name: r for r in relations}
        self._by_suffix: dict[str, list[SensitiveRelation]] = {}
        for relation in relations:
            parts = relation.name.split(".")
            for i in range(len(parts)):
                self._by_suffix.setdefault(".".join(parts[i:]), []).append(relation)
        self._resolved: dict[tuple[str | None, str], SensitiveRelation | None] = {}

    def resolve(self, database: str | None, relation: str) -> SensitiveRelation | None:
        key = (database, relation)
        try:
            return self._resolved[key]
        except KeyError:
            found = self._resolved[key] = self._lookup(database, relation.lower().replace('"', "").replace("`", ""))
            return found

    def _lookup(self, database: str | None, relation: str) -> SensitiveRelation | None:
        candidates = self._by_suffix.get(relation, [])
        if not candidates and relation.count(".") == 1:
            # MariaDB: `db.table` names a database, not a schema.
            db, table = relation.split(".")
            candidates = [r for r in self._by_suffix.get(table, []) if r.database == db]
        if database is not None:
            local = [r for r in candidates if r.database == database.lower()]
            if local:
                candidates = local
            elif relation.count(".") < 2 and candidates:
                return None  # an unqualified name in another database is a different table
        return candidates[0] if len(candidates) == 1 else None

    @classmethod
    def load(cls, path: Path | str) -> "Catalog":
        return cls.from_mapping(load_yaml_mapping(path, "catalog"), str(path))

    @classmethod
    def from_mapping(cls, data: dict, name: str = "catalog") -> "Catalog":
        objects = data.get("objects")
        if not isinstance(objects, dict):
            raise InputError(f"{name}: key 'objects' is required and must map relations to their sensitive columns")
        relations = []
        for relation, columns in objects.items():
            if not isinstance(columns, dict) or not all(isinstance(c, str) for c in columns.values()):
                raise InputError(f"{name}: objects.{relation} must map each column to a category name")
            relations.append(SensitiveRelation(str(relation).lower(), {str(k).lower(): v for k, v in columns.items()}))
        return cls(relations)

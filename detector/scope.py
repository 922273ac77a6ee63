"""A person's usual scope: the filter values they keep using in each statement shape.

Clerks, dispatchers and sales staff read the data of their own territory: the
same few cities, stations, branches or statuses, day after day, in the same
statement shapes. Someone harvesting personal data to sell wants breadth, so
the same ordinary-looking statements start naming cities and stations they
never work with. The volume may grow only twofold; the share of rows read
outside the usual scope grows tenfold.

For each statement shape (fingerprint) the person runs on personal data, and
each literal position in it, `ScopeMemory` counts on how many days each value
was used. A position is *scoped* when values used on at least `USUAL_DAYS` of
the shape's active days carry at least `COVER` of its uses: a city or a station
is; a phone number, a name prefix or a date (a new value each day) is not. A
statement is out of scope when a scoped position holds a value that is not
usual. Shapes are judged only after `MIN_DAYS` active days.

Only a 16-bit checksum of each value is kept, never the value: 65,536 buckets
are plenty to tell a person's dozen usual cities apart, and far too few to
recover a phone number or a name from the state.
"""

from __future__ import annotations

import zlib

MIN_DAYS = 5            # active days of a shape before its scope is judged
USUAL_DAYS = 0.2        # a value is usual when used on this share of the shape's active days (and on two)
COVER = 0.75            # usual values must carry this share of a position's uses for it to be scoped
MAX_VALUES = 24         # values remembered per position (values seen on one day only make room)
MAX_SHAPES = 32         # statement shapes remembered per person
HASH_MASK = 0xFFFF


class ShapeScope:
    """The values of one statement shape's literal positions: hash -> [uses, days, last day].

    Once the shape is judged, a position that is no scope is dropped (None): it will not become one,
    and a phone number or a date position would otherwise cost a dictionary update per statement."""

    __slots__ = ("uses", "days", "last_day", "positions", "usual_day", "usual")

    def __init__(self, width: int) -> None:
        self.uses, self.days, self.last_day = 0, 0, -1
        self.positions: list[dict[int, list[int]] | None] = [{} for _ in range(width)]
        self.usual_day = -1                              # the day `usual` was computed for
        self.usual: list[frozenset[int]] = []            # per scoped position: its usual values

    def judge_and_learn(self, literals: tuple[str, ...], day: int) -> bool:
        """Whether these values leave the usual scope; then count them."""
        if day != self.last_day:
            self.days += 1
            self.last_day = day
        judging = self.days > MIN_DAYS
        if judging and self.usual_day != day:
            self._refresh_usual(day)
        self.uses += 1
        outside = False
        for i, seen in enumerate(self.positions):
            if seen is None:
                continue
            value = value_hash(literals[i])
            if judging and value not in self.usual[i]:
                outside = True
            _count(seen, value, day)
        return outside

    def _refresh_usual(self, day: int) -> None:
        """Once a day: each position's usual values, by the days before today; positions that are no
        scope are dropped."""
        need = max(2.0, USUAL_DAYS * (self.days - 1))
        self.usual_day = day
        self.usual = [frozenset()] * len(self.positions)
        for i, seen in enumerate(self.positions):
            if seen is None:
                continue
            usual = frozenset(h for h, (_, days, last) in seen.items() if days - (last == day) >= need)
            if usual and sum(seen[h][0] for h in usual) >= COVER * self.uses:
                self.usual[i] = usual
            else:
                self.positions[i] = None

    def to_list(self) -> list:
        return [self.uses, self.days, self.last_day,
                [None if seen is None else [[h, *v] for h, v in seen.items()] for seen in self.positions]]

    @classmethod
    def from_list(cls, data: list) -> "ShapeScope":
        uses, days, last_day, positions = data
        shape = cls(len(positions))
        shape.uses, shape.days, shape.last_day = int(uses), int(days), int(last_day)
        shape.positions = [None if seen is None else {int(h): [int(u), int(d), int(last)] for h, u, d, last in seen}
                           for seen in positions]
        return shape


def _count(seen: dict[int, list[int]], value: int, day: int) -> None:
    entry = seen.get(value)
    if entry is None:
        if len(seen) >= MAX_VALUES and not _make_room(seen):
            return
        entry = seen[value] = [0, 0, -1]
    entry[0] += 1
    if entry[2] != day:
        entry[1] += 1
        entry[2] = day


def _make_room(seen: dict[int, list[int]]) -> bool:
    """Forget the least used value seen on one day only; False when every value recurs."""
    rare = min(seen, key=lambda h: (seen[h][1], seen[h][0]))
    if seen[rare][1] > 1:
        return False
    del seen[rare]
    return True


class ScopeMemory:
    """One person's scope per statement shape (at most `MAX_SHAPES` shapes)."""

    __slots__ = ("shapes",)

    def __init__(self, shapes: dict[str, ShapeScope] | None = None) -> None:
        self.shapes = shapes if shapes is not None else {}

    def judge_and_learn(self, fingerprint_id: str, literals: tuple[str, ...], day: int) -> bool:
        """Whether a personal-data read of this shape names a value outside the usual scope."""
        if not literals:
            return False
        shape = self.shapes.get(fingerprint_id)
        if shape is None:
            if len(self.shapes) >= MAX_SHAPES:
                return False
            shape = self.shapes[fingerprint_id] = ShapeScope(len(literals))
        elif len(shape.positions) != len(literals):     # IN lists of another length: positions do not align
            return False
        return shape.judge_and_learn(literals, day)

    def ran_before(self, fingerprint_id: str, today: int) -> bool:
        """Whether this person read personal data with this statement shape on an earlier day (as far as
        the memory knows: it keeps shapes with literals, up to `MAX_SHAPES`; others count as never run)."""
        shape = self.shapes.get(fingerprint_id)
        return shape is not None and (shape.last_day < today or shape.days > 1)

    def to_dict(self) -> dict:
        return {fp: shape.to_list() for fp, shape in self.shapes.items()}

    @classmethod
    def from_dict(cls, data: dict) -> "ScopeMemory":
        return cls({fp: ShapeScope.from_list(v) for fp, v in data.items()})


def value_hash(literal: str) -> int:
    return zlib.crc32(literal.encode("utf-8", "surrogatepass")) & HASH_MASK

"""Whether a person's own history was made doing another role's work.

The directory shows a person's current role, not when it changed. Someone moved
from customer service to sales keeps weeks of customer-service history, and
their first days of ordinary sales work (paging through a city's members for a
campaign) are far above that history while well inside their new peers'
normal. Judged against the stale history alone, a role change alerts for days.

The statement shapes someone reads personal data with tell which work their
history holds: every role has routine shapes that several of its members run
(`common_shapes`, learned in training). A person whose remembered shapes
(weighted by use) mostly are not their role's, and mostly are another role's,
has a history from elsewhere. Such a person is judged as a new hire is, against
peers, but leniently: an excess counts only when it is an excess over both the
own history and the peers (`features.excess_cells`), so neither their old work
nor their new work alerts, and reading more than the new peers still does.
Developers' and DBAs' ad-hoc shapes are nobody's routine: they never make a
history "another role's". The forest and its threshold are fitted without this
leniency (`training.train`), so it only ever removes alerts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from detector.scope import ScopeMemory

MIN_MEMBERS = 2        # members of a role who ran a shape in training for it to be that role's routine
MIN_USES = 100         # personal-data statements remembered before a history's fit is judged
SHARE = 0.5            # the share of uses in a role's routine shapes that makes the history that role's


def common_shapes(members: Iterable[tuple[str, ScopeMemory]]) -> dict[str, frozenset[str]]:
    """Per role, the shapes at least `MIN_MEMBERS` of its members read personal data with."""
    counts: dict[str, Counter] = {}
    for role, scope in members:
        counts.setdefault(role, Counter()).update(scope.shapes.keys())
    return {role: frozenset(fp for fp, n in c.items() if n >= MIN_MEMBERS) for role, c in counts.items()}


class RoleRoutines:
    """Each role's routine shapes, indexed by shape: judging a history is one look-up per remembered shape."""

    def __init__(self, common: Mapping[str, frozenset[str]]) -> None:
        self.roles = frozenset(common)
        self._roles_of: dict[str, tuple[str, ...]] = {}
        for role, shapes in common.items():
            for fp in shapes:
                self._roles_of[fp] = self._roles_of.get(fp, ()) + (role,)

    def history_from_other_role(self, scope: ScopeMemory, role: str) -> bool:
        """Whether the person's remembered shapes are mostly another role's routine and not their own role's."""
        if role not in self.roles or len(self.roles) < 2:
            return False
        total = 0
        per_role: Counter = Counter()
        for fp, shape in scope.shapes.items():
            total += shape.uses
            for routine_of in self._roles_of.get(fp, ()):
                per_role[routine_of] += shape.uses
        if total < MIN_USES or per_role[role] >= SHARE * total:
            return False
        return any(n >= SHARE * total for r, n in per_role.items() if r != role)

"""simulate(): the company, its calendar and plans, then day after day of events.

Training days are generated first and summarised per person (`History`);
incidents are planned against those summaries and injected into the test days.
The whole run is a pure function of the configuration: every random draw comes
from a generator keyed by (seed, purpose, entity, day).
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter

import numpy as np

from detector.simulate.activity import ADDR, APP, DB, Activity, SessionRules, to_events
from detector.simulate.company import Employee, AddressBook, build_company
from detector.simulate.config import SimulationConfig
from detector.simulate.dice import Dice
from detector.simulate.eventlog import DayChunk, EventLog
from detector.simulate.plans import DAY_MS, DayContext, DayPlan, build_days, build_plans
from detector.simulate.roles import TASK_HABITS, TASK_WEIGHTS, run_day
from detector.simulate.scenarios import History, Incident, Planner, Scene, emit, plan_incidents
from detector.simulate.schema import catalog_mapping
from detector.simulate.services import run_service
from detector.simulate.workdays import WorkCalendar

HUMAN_ID_SHARE = {"pgaudit": 0.8, "mariadb_audit": 0.5}
SERVICE_ID_SHARE = {"pgaudit": 0.75, "mariadb_audit": 0.45}
OBJECTS_SHARE = 0.15
SESSION_GAP_MS = 45 * 60_000


@dataclass(frozen=True)
class Workload:
    """A simulated company's activity: what `write_workload` puts on disk.

    `train_events` / `test_events` are `EventLog`s (read-only sequences of contract
    event dicts in time order; `.incident_index` tells which incident, if any, each
    event belongs to). `labels` follow the contract (section 6) plus `intensity`,
    `db_user`, `events` and a human-readable `detail`.
    """

    config: SimulationConfig
    train_events: EventLog
    test_events: EventLog
    directory: list[dict[str, str]]
    catalog: dict
    calendar: dict
    labels: list[dict]


@dataclass
class _World:
    config: SimulationConfig
    people: list[Employee]
    days: list[DayContext]
    plans: dict[int, list[DayPlan]]
    release_day: int
    rotation: tuple[int, int]          # (service employee index, day index) of a password-rotation hiccup


def simulate(config: SimulationConfig) -> Workload:
    """The whole workload for a configuration; same configuration, same workload."""
    cal = WorkCalendar(config.timezone, config.start, config.end)
    people = build_company(config, TASK_WEIGHTS, TASK_HABITS)
    book = AddressBook(Dice.of(config.seed, 2, 1))
    days = build_days(config, cal)
    plans = build_plans(config, people, days, book)
    d = Dice.of(config.seed, 10)
    services = [e.index for e in people if not e.human]
    world = _World(config, people, days, plans,
                   release_day=config.train_days + d.between(1, config.test_days - 2),
                   rotation=(d.pick(services), d.below(config.days)))
    history = {e.index: History() for e in people if e.human}
    train = [_day(world, ctx, {}, history) for ctx in days if not ctx.test]
    incidents = plan_incidents(Planner(config, people, plans, days, history, book, Dice.of(config.seed, 5)))
    by_day: dict[int, dict[int, list[Incident]]] = {}
    for inc in incidents:
        for k in inc.days:
            by_day.setdefault(k, {}).setdefault(inc.employee.index, []).append(inc)
    test = [_day(world, ctx, by_day.get(ctx.index, {}), None) for ctx in days if ctx.test]
    test_log = EventLog(test)
    return Workload(
        config=config,
        train_events=EventLog(train),
        test_events=test_log,
        directory=[e.directory_row() for e in sorted(people, key=lambda e: e.employee_id)],
        catalog=catalog_mapping(),
        calendar=cal.as_mapping(),
        labels=_labels(incidents, test_log),
    )


def _day(world: _World, ctx: DayContext, incidents: dict[int, list[Incident]],
         history: dict[int, History] | None) -> DayChunk:
    seed = world.config.seed
    k = ctx.index
    sink: list[tuple[int, bytes, int]] = []
    for e in world.people:
        out: list[tuple] = []
        if e.human:
            plan = world.plans[e.index][k]
            persona = e.persona_on(ctx.day)
            if plan.works:
                a = Activity(Dice.of(seed, 7, e.index, k), out, ctx, e.account, None, plan.addr, err=persona.err)
                run_day(a, e, persona, plan, ctx)
                if history is not None:
                    _remember(history[e.index], a, out)
            rules = SessionRules(SESSION_GAP_MS, persona.typo, HUMAN_ID_SHARE, OBJECTS_SHARE)
            for inc in incidents.get(e.index, ()):
                a = Activity(Dice.of(seed, 8, inc.index, k), out, ctx, e.account, None,
                             plan.addr or persona.addrs[0], incident=inc.index)
                emit(Scene(inc, k, ctx, plan, persona, a))
        else:
            run_service(e, ctx, seed, out, world.release_day, world.rotation[1] if world.rotation[0] == e.index else -1)
            rules = SessionRules(DAY_MS, 0.0, SERVICE_ID_SHARE, OBJECTS_SHARE)
        to_events(out, e.employee_id, rules, ctx, Dice.of(seed, 9, e.index, k), sink)
    sink.sort(key=itemgetter(0))
    return DayChunk([s[1] for s in sink], [s[0] for s in sink], [s[2] for s in sink])


def _remember(h: History, a: Activity, out: list[tuple]) -> None:
    h.active_days += 1
    h.statements.append(a.n)
    h.sens_rows.append(a.sens_rows)
    h.max_sens = max(h.max_sens, a.max_sens)
    h.cats.update(a.cats)
    for r in out:
        h.addrs.add(r[ADDR])
        h.apps.add(r[APP])
        h.dbs.add(r[DB])


def _labels(incidents: list[Incident], log: EventLog) -> list[dict]:
    owner = log.incident_index
    labels = []
    for inc in incidents:
        where = np.flatnonzero(owner == inc.index)
        if len(where) == 0:
            continue
        first, last = log[int(where[0])], log[int(where[-1])]
        labels.append({
            "incident_id": inc.incident_id,
            "employee_id": inc.employee.employee_id,
            "scenario": inc.scenario,
            "start": first["ts"],
            "end": last["ts"],
            "intensity": inc.intensity,
            "db_user": inc.employee.account,
            "events": int(len(where)),
            "detail": inc.detail,
        })
    return labels

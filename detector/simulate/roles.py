"""What each role does all day, statement by statement.

A role is a set of tasks (a customer call, a dispatch round, a report) with
weights; a person draws tasks from their own mix (see `Persona`) at times drawn
from their working spans, until their volume for the day is reached. Special
days (festival, month end, maintenance window ...) add their own episodes.

Statements are written the way each tool writes them: the Hibernate-style SQL of
crm-web, the MyBatis SQL of dispatch-app, hand-typed SQL in DBeaver or psql,
Tableau's quoted identifiers, pg_dump's COPY. Literals (phones, ID numbers,
addresses, waybill numbers) are fresh every time.
"""

from __future__ import annotations

from detector.simulate import backoffice as bo
from detector.simulate import frontline as fl
from detector.simulate.activity import Activity
from detector.simulate.clients import Task, client
from detector.simulate.company import ANALYST, CS, DBA, DEVELOPER, DISPATCH, FINANCE, SALES, Employee, Persona
from detector.simulate.plans import HOUR, DayContext, DayPlan
from detector.simulate.schema import BILLING, CRM, LOGISTICS


TASK_WEIGHTS: dict[str, dict[str, float]] = {
    CS: {"cs_phone_call": 0.42, "cs_waybill_call": 0.22, "cs_order_call": 0.14, "cs_name_search": 0.06,
         "cs_ticket_queue": 0.1, "cs_verify_identity": 0.07, "cs_team_report": 0.04},
    DISPATCH: {"dispatch_station_list": 0.24, "dispatch_assign": 0.3, "dispatch_couriers": 0.08, "dispatch_lookup": 0.16,
               "dispatch_pickups": 0.1, "dispatch_stats": 0.06, "dispatch_exceptions": 0.06, "dispatch_sql": 0.03},
    SALES: {"sales_client_list": 0.2, "sales_client_view": 0.25, "sales_store_report": 0.14, "sales_promotions": 0.14,
            "sales_products": 0.15, "sales_remark": 0.06, "sales_excel": 0.03},
    ANALYST: {"analyst_aggregate": 0.4, "analyst_tableau": 0.12, "analyst_explore": 0.16, "analyst_extract": 0.04,
              "analyst_metadata": 0.18, "analyst_temp": 0.06},
    FINANCE: {"finance_payment_lookup": 0.32, "finance_refunds": 0.12, "finance_settlements": 0.1, "finance_ledger": 0.14,
              "finance_invoice": 0.18, "finance_orders": 0.08},
    DBA: {"dba_monitor": 0.4, "dba_counts": 0.15, "dba_ddl": 0.08, "dba_maintenance": 0.2, "dba_users": 0.08,
          "dba_dump_reference": 0.03},
    DEVELOPER: {"developer_staging": 0.36, "developer_metadata": 0.22, "developer_debug": 0.2, "developer_explain": 0.1,
                "developer_scratch": 0.05},
}
TASK_HABITS: dict[str, str] = {
    "cs_verify_identity": "verifies_id", "cs_team_report": "team_lead", "dispatch_pickups": "handles_pickups",
    "dispatch_sql": "sql_client", "sales_excel": "uses_excel", "analyst_tableau": "tableau", "finance_refunds": "refunds",
    "developer_debug": "prod_debug",
}
TASKS: dict[str, Task] = {name: getattr(fl, name, None) or getattr(bo, name)
                          for weights in TASK_WEIGHTS.values() for name in weights}
# Hour-of-day weights: when in their working spans people are busiest.
_RHYTHM = {
    "office": (0.3,) * 7 + (0.6, 0.85, 1.0, 1.0, 0.85, 0.5, 0.75, 0.95, 1.0, 0.95, 0.8, 0.6, 0.55, 0.55, 0.5, 0.45, 0.4),
    CS: (0.3,) * 7 + (0.6, 0.9, 1.0, 1.0, 0.9, 0.7, 0.85, 1.0, 1.0, 0.95, 0.85, 0.75, 0.85, 0.9, 0.8, 0.6, 0.4),
    DISPATCH: (0.3,) * 7 + (1.0, 1.0, 0.95, 0.8, 0.7, 0.6, 0.8, 0.9, 0.85, 0.8, 0.7, 0.5, 0.4, 0.4, 0.4, 0.3, 0.3),
}
SPECIAL: dict[str, Task] = {
    "big_report": lambda a, p, e: _big_report(a, p, e),
    "month_end": lambda a, p, e: bo.finance_reconcile(a, p, e) if "reconciles" in p.habits else None,
    "month_close": lambda a, p, e: [bo.finance_settlements(a, p, e) for _ in range(a.d.between(2, 6))],
    "maintenance": bo.dba_window,
    "oncall": bo.dba_oncall,
    "dq_check": bo.dba_quality_check,
    "sample_customers": bo.developer_sample,
    "hotfix": bo.developer_hotfix,
    "export_clients": fl.sales_export_clients,
    "handover": fl.sales_export_clients,
}


_DENIED = {
    CS: ((BILLING, "SELECT * FROM finance.payments LIMIT 10"), (LOGISTICS, "SELECT * FROM couriers LIMIT 10")),
    DISPATCH: ((CRM, "SELECT * FROM customers LIMIT 10"), (LOGISTICS, "DELETE FROM delivery_exceptions WHERE id = 1")),
    SALES: ((BILLING, "SELECT * FROM finance.invoices LIMIT 20"), (CRM, "SELECT * FROM customers_archive LIMIT 10")),
    ANALYST: ((BILLING, "SELECT * FROM finance.refunds LIMIT 100"), (CRM, "SELECT * FROM customers_archive LIMIT 100"),
              (CRM, "CREATE TABLE public.tmp_analysis AS SELECT * FROM orders LIMIT 0")),
    FINANCE: ((CRM, "UPDATE orders SET status = 'REFUNDED' WHERE id = 1"), (BILLING, "SELECT * FROM finance.gl_accounts_audit")),
    DBA: ((CRM, "SELECT * FROM pg_authid"),),
    DEVELOPER: ((CRM, "SELECT * FROM customers_archive LIMIT 10"), (BILLING, "SELECT * FROM finance.payments LIMIT 10"),
                (CRM, "ALTER TABLE public.orders ADD COLUMN debug_flag boolean")),
}


def denied(a: Activity, p: Persona, e: Employee) -> None:
    """A statement the person is not granted (a new hire finding their way, a curious analyst)."""
    d = a.d
    db, sql = d.pick(_DENIED[p.role])
    client(a, p, db)
    action = "DDL" if sql.startswith(("CREATE", "ALTER")) else sql.split()[0]
    a.fail(db, sql, action)


def _big_report(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    for _ in range(d.between(15, 50)):
        bo.analyst_aggregate(a, p, e)
    for _ in range(d.between(1, 3)):
        bo.analyst_extract(a, p, e, big=True)
        a.wait(60, 900)


def _pick_time(a: Activity, plan: DayPlan, rhythm: tuple[float, ...]) -> int:
    d = a.d
    spans = plan.spans
    total = sum(b - s for s, b in spans)
    for _ in range(20):
        x = d.u() * total
        for s, b in spans:
            if x < b - s:
                t = s + int(x)
                break
            x -= b - s
        else:
            t = spans[-1][1] - 1
        if d.u() < rhythm[(t // HOUR) % 24]:
            return t
    return t


def run_day(a: Activity, e: Employee, p: Persona, plan: DayPlan, ctx: DayContext) -> None:
    """A person's ordinary day (plus the day's special episodes) into `a`."""
    d = a.d
    rhythm = _RHYTHM.get(p.role, _RHYTHM["office"])
    target = int(p.volume * plan.volume) if plan.spans else 0
    tasks, cum = p.tasks, p.task_cum
    chained = False
    guard = 0
    while a.n < target and guard < 20_000:
        guard += 1
        t = a.t + d.between(3_000, 60_000) if chained else _pick_time(a, plan, rhythm)
        _start(a, plan, e, t)
        TASKS[d.pick_cum(tasks, cum)](a, p, e)
        chained = d.u() < 0.3 and a.t < plan.spans[-1][1]
    if plan.spans and (("ramp" in plan.flags and d.chance(0.6)) or (p.sql_app and d.chance(0.05))):
        for _ in range(d.between(1, 3)):
            _start(a, plan, e, _pick_time(a, plan, rhythm))
            denied(a, p, e)
    timed = {flag: start for flag, start, _end in plan.windows}
    for flag in sorted(plan.flags):
        if flag not in SPECIAL:
            continue
        if flag in timed:
            _start(a, plan, e, timed[flag] + d.below(120_000))
            if flag == "oncall" and plan.night_addr:
                a.addr = plan.night_addr
        elif plan.spans:
            _start(a, plan, e, _pick_time(a, plan, rhythm))
        else:
            continue
        SPECIAL[flag](a, p, e)


def _start(a: Activity, plan: DayPlan, e: Employee, t: int) -> None:
    a.t = t
    a.account = e.account
    a.addr = plan.alt_addr if (plan.alt_addr is not None and t >= plan.alt_from) else plan.addr

"""The workload simulator: a company whose staff query customers' personal data.

It exists so that detection quality can be measured: per-incident recall, false
alerts per 1,000 employee-days and time to detect, on workloads realistic and
varied enough that a detector cannot overfit them. It must never do I/O outside
`write_workload`, never read the clock or the environment, and never depend on
the detector's features: it simulates behaviour, not a detector's blind spots.

The company
    A retailer with its own logistics arm. Roles (directory `role`):
    customer_service, dispatch, sales, analyst, finance, dba, developer and
    service_account (about 4% of the accounts, at least two). Departments:
    cs-shanghai, cs-hangzhou, logistics, sales-east, sales-south, bi, finance,
    it-platform, it-dev. Customer service and dispatch work individual shift
    rosters through weekends and holidays; everyone else keeps office hours on
    the Chinese working calendar (holidays, make-up workdays).

Accounts
    Personal accounts are pinyin names (`zhang_wei`, `zhang_wei2` on a clash).
    DBAs also have an admin account (`dba_zhang_wei`); some analysts and finance
    staff a reporting account (`li_na_rpt`) used by Tableau or Excel. Service
    accounts are `svc_<kind>` (`svc_crm_web`, `svc_backup`, `svc_dispatch_api`,
    `svc_etl`, `svc_billing`, `svc_notify`, `svc_monitor`, `svc_search_sync`,
    `svc_report`). No account is shared; one scenario borrows a colleague's.

Databases and relation naming (catalog keys, event `objects`)
    Always `database.schema.table`.
    * `crm` (PostgreSQL, source `pgaudit`): `crm.public.customers`, `orders`,
      `tickets`, ... and the developers' `crm.staging.*` (masked, not in the
      catalog). Statements name tables unqualified (search_path public) or as
      `public.x` / `staging.x`.
    * `billing` (PostgreSQL, `pgaudit`): schema `finance`, always written
      qualified in statements: `finance.payments` -> `billing.finance.payments`.
    * `logistics` (MariaDB, `mariadb_audit`): a MariaDB database is its own
      schema, so `logistics.logistics.waybills`; statements write `waybills`,
      `` `waybills` `` or `logistics.waybills` (database.table).

Events
    Contract events; `employee_id` is absent from ~30% of them (resolve via the
    directory), `objects` present on ~15%, `rows` absent where the source cannot
    tell (COPY, dumps, DDL, some MariaDB statements). crm-web and the backends
    write ORM SQL (crm-web with inlined literals, backends with $n parameters);
    people write SQL by hand in DBeaver, psql, DataGrip or Navicat.

Scenarios (test period only; labels.jsonl)
    bulk_dump, copy_export, rapid_enumeration, paging_export, low_and_slow,
    unusual_columns, offhours_new_address, departing_employee,
    credential_misuse, slow_enumeration; each incident subtle, moderate or
    blatant relative to its perpetrator's own history.

Workload.train_events / test_events are `EventLog`s: read-only sequences of
contract event dicts in time order, decoded lazily from compact day blocks.
"""

from detector.simulate.config import SimulationConfig
from detector.simulate.engine import Workload, simulate
from detector.simulate.eventlog import EventLog
from detector.simulate.scenarios import SCENARIOS
from detector.simulate.writer import write_workload

__all__ = ["SCENARIOS", "EventLog", "SimulationConfig", "Workload", "simulate", "write_workload"]

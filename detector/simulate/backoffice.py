"""Back-office work: analysts' reports, finance, database administration, development.

These people type SQL into DBeaver, DataGrip, psql or pgAdmin (or run Python,
Tableau and Excel against the databases), so their statements are freer in
shape, include metadata queries and the occasional typo.
"""

from __future__ import annotations

from detector.simulate import fakes
from detector.simulate.activity import Activity
from detector.simulate.clients import FINANCE_PORTAL, ODBC, TABLEAU, _found, client
from detector.simulate.company import Employee, Persona
from detector.simulate.fakes import customer_id, order_id, order_no, phone, waybill_no
from detector.simulate.schema import (
    BILLING, CRM, LOGISTICS, O_ARCHIVE, O_CUSTOMERS,
    O_INVENTORY, O_INVOICES, O_ITEMS, O_LEDGER, O_MASKED, O_ORDERS,
    O_PAYMENTS, O_PAYMENTS_SETTLEMENTS, O_PRODUCTS, O_PROMOS, O_REFUNDS,
    O_SCANS, O_SETTLEMENTS, O_STORES, O_TEST_ORDERS, O_TICKETS, O_WAYBILLS,
)


# ---------------------------------------------------------------- analyst

_AGGREGATES = (
    (CRM, "SELECT city, count(*) AS customers FROM customers GROUP BY city ORDER BY 2 DESC", (300, 340), O_CUSTOMERS, False),
    (CRM, "SELECT member_level, count(*), avg(points) FROM customers WHERE created_at >= '{a90}' GROUP BY member_level", (6, 6), O_CUSTOMERS, False),
    (CRM, "SELECT date_trunc('week', created_at) AS wk, channel, count(*), sum(total_amount) FROM orders "
          "WHERE created_at >= '{a90}' GROUP BY 1, 2 ORDER BY 1, 2", (55, 70), O_ORDERS, False),
    (CRM, "SELECT s.city, sum(o.total_amount) AS gmv FROM orders o JOIN stores s ON s.id = o.store_id "
          "WHERE o.created_at >= '{a30}' GROUP BY s.city ORDER BY gmv DESC", (30, 45), O_ORDERS, False),
    (CRM, "SELECT extract(year FROM age(birth_date))::int / 10 * 10 AS age_band, gender, count(*) FROM customers "
          "GROUP BY 1, 2 ORDER BY 1, 2", (12, 16), O_CUSTOMERS, False),
    (CRM, "SELECT count(DISTINCT phone) FROM customers WHERE last_order_at >= '{a30}'", (1, 1), O_CUSTOMERS, True),
    (CRM, "SELECT p.category_id, sum(i.quantity * i.unit_price) FROM order_items i JOIN products p ON p.id = i.sku_id "
          "JOIN orders o ON o.id = i.order_id WHERE o.created_at >= '{a30}' GROUP BY 1", (150, 400), O_ITEMS, False),
    (CRM, "SELECT category, status, count(*) FROM tickets WHERE created_at >= '{a30}' GROUP BY 1, 2", (20, 35), O_TICKETS, False),
    (CRM, "WITH first AS (SELECT customer_id, min(created_at) AS first_at FROM orders GROUP BY customer_id) "
          "SELECT date_trunc('month', first_at), count(*) FROM first GROUP BY 1 ORDER BY 1", (24, 40), O_ORDERS, False),
    (LOGISTICS, "SELECT dest_station_id, status, COUNT(*) FROM waybills WHERE created_at >= '{a7}' "
                "GROUP BY dest_station_id, status", (300, 2000), O_WAYBILLS, False),
    (LOGISTICS, "SELECT receiver_province, COUNT(*), AVG(TIMESTAMPDIFF(HOUR, created_at, delivered_at)) FROM waybills "
                "WHERE delivered_at >= '{a30}' GROUP BY receiver_province", (28, 31), O_WAYBILLS, False),
    (BILLING, "SELECT method, date_trunc('day', paid_at) AS d, count(*), sum(amount) FROM finance.payments "
              "WHERE paid_at >= '{a30}' GROUP BY 1, 2 ORDER BY 2", (120, 160), O_PAYMENTS, False),
    (BILLING, "SELECT status, count(*), sum(amount) FROM finance.refunds WHERE created_at >= '{a30}' GROUP BY status",
     (3, 5), O_REFUNDS, False),
)


def _fill(a: Activity, template: str) -> str:
    if "{" not in template:
        return template
    return template.format(a7=a.ago(7), a30=a.ago(30), a90=a.ago(90), a1=a.ago(1))


def analyst_aggregate(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    db, sql, (lo, hi), obj, sens = d.pick(_AGGREGATES)
    if "python" in p.habits and d.chance(0.4):
        a.app = None
        sql = sql.replace("SELECT", "select").replace(" FROM ", " from ").replace(" GROUP BY ", " group by ")
    else:
        client(a, p, db)
    a.q(db, _fill(a, sql), d.between(lo, hi), obj=obj, sens=sens)
    a.wait(20, 300)


def analyst_tableau(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    a.app = TABLEAU
    a.account = e.accounts[1] if len(e.accounts) > 1 else e.account
    since = a.ago(d.pick((30, 60, 90)))
    choices = (
        (f'SELECT "orders"."channel" AS "channel", SUM("orders"."total_amount") AS "sum:total_amount:ok" FROM "public"."orders" '
         f'"orders" WHERE ("orders"."created_at" >= (DATE \'{since}\')) GROUP BY 1', d.between(4, 6), O_ORDERS),
        ('SELECT "customers"."city" AS "city", COUNT(DISTINCT "customers"."id") AS "ctd:id:ok" FROM "public"."customers" '
         '"customers" GROUP BY 1', d.between(300, 340), O_CUSTOMERS),
        (f'SELECT CAST(DATE_TRUNC(\'DAY\', "orders"."created_at") AS DATE) AS "tdy:created_at:ok", COUNT("orders"."id") AS '
         f'"cnt:id:ok" FROM "public"."orders" "orders" WHERE ("orders"."created_at" >= (DATE \'{since}\')) GROUP BY 1',
         d.between(30, 90), O_ORDERS),
        ('SELECT "stores"."city" AS "city", "stores"."name" AS "name", SUM("orders"."total_amount") AS "sum:total_amount:ok" '
         'FROM "public"."orders" "orders" INNER JOIN "public"."stores" "stores" ON ("orders"."store_id" = "stores"."id") '
         'GROUP BY 1, 2', d.between(300, 350), O_STORES),
    )
    for _ in range(d.between(2, 8)):
        sql, rows, obj = d.pick(choices)
        a.q(CRM, sql, rows, obj=obj)
        a.wait(0.5, 8)
    a.account = e.account


def analyst_explore(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    if "explores_pii" in p.habits and d.chance(0.5):
        choice = d.below(3)
        if choice == 0:
            client(a, p, CRM)
            a.q(CRM, f"SELECT * FROM orders WHERE created_at >= '{a.ago(1)}' LIMIT 200", 200, obj=O_ORDERS, sens=True)
        elif choice == 1:
            client(a, p, LOGISTICS)
            a.q(LOGISTICS, "SELECT * FROM waybills ORDER BY created_at DESC LIMIT 100", 100, obj=O_WAYBILLS, sens=True)
        else:
            client(a, p, CRM)
            a.q(CRM, "SELECT id, name, city, member_level, last_order_at FROM customers WHERE member_level = 5 LIMIT 100",
                100, obj=O_CUSTOMERS, sens=True)
    else:
        client(a, p, CRM)
        a.q(CRM, f"SELECT * FROM products WHERE category_id = {d.between(1, 2100)} LIMIT 200", d.between(0, 200), obj=O_PRODUCTS)
        if d.chance(0.5):
            a.wait(10, 60)
            a.q(CRM, "SELECT * FROM order_items LIMIT 100", 100, obj=O_ITEMS)
    if d.chance(0.4):
        a.wait(10, 60)
        a.q(CRM, f"SELECT count(*) FROM orders WHERE created_at >= '{a.ago(d.between(1, 30))}'", 1, obj=O_ORDERS)


def analyst_extract(a: Activity, p: Persona, e: Employee, big: bool = False) -> None:
    """A legitimate extract of non-personal rows for offline analysis."""
    d = a.d
    if "python" in p.habits:
        a.app = None
    else:
        client(a, p, CRM)
    lo, hi = (20_000, 200_000) if big else (1_000, 20_000)
    rows = int(d.loguniform(lo, hi))
    if d.chance(0.5):
        a.q(CRM, f"SELECT id, customer_id, store_id, channel, total_amount, created_at FROM orders "
                 f"WHERE created_at >= '{a.ago(d.between(7, 60))}' AND created_at < '{a.ago(0)}'", rows, obj=O_ORDERS)
    else:
        start = d.between(1, 70_000_000)
        a.q(CRM, f"SELECT order_id, sku_id, quantity, unit_price FROM order_items WHERE id BETWEEN {start} AND {start + rows * 2}",
            rows, obj=O_ITEMS)


def analyst_metadata(a: Activity, p: Persona, e: Employee) -> None:
    _metadata(a, p, a.d.pick((CRM, CRM, BILLING, LOGISTICS)))


def analyst_temp(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    client(a, p, CRM)
    k = d.between(1, 99)
    a.q(CRM, f"CREATE TEMP TABLE tmp_cohort_{k} AS SELECT customer_id, min(created_at) AS first_order, count(*) AS orders "
             f"FROM orders WHERE created_at >= '{a.ago(365)}' GROUP BY customer_id", None, "DDL", O_ORDERS)
    a.wait(20, 120)
    a.q(CRM, f"SELECT date_trunc('month', first_order) AS m, count(*), avg(orders) FROM tmp_cohort_{k} GROUP BY 1 ORDER BY 1",
        12)
    a.wait(30, 300)
    a.q(CRM, f"DROP TABLE tmp_cohort_{k}", None, "DDL")


def _metadata(a: Activity, p: Persona, db: str) -> None:
    d = a.d
    client(a, p, db, "meta")
    if a.app == "psql":                                   # \d <table>
        table = d.pick(("orders", "customers", "tickets", "order_items", "products")) if db == CRM else \
            d.pick(("payments", "refunds", "invoices"))
        a.q(db, "SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n "
                f"ON n.oid = c.relnamespace WHERE c.relname OPERATOR(pg_catalog.~) '^({table})$' COLLATE pg_catalog.default "
                "AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 2, 3", 1)
        a.tick()
        a.q(db, "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull FROM pg_catalog.pg_attribute a "
                f"WHERE a.attrelid = '{d.between(16400, 99000)}' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            d.between(5, 19))
        return
    if db == LOGISTICS:
        a.q(db, "SHOW DATABASES", d.between(3, 6), "OTHER")
        a.q(db, "SELECT TABLE_NAME, TABLE_TYPE, ENGINE, TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'logistics'",
            8)
        a.q(db, "SHOW FULL COLUMNS FROM `logistics`.`waybills`", 19, "OTHER")
        return
    a.q(db, "SELECT n.oid,n.*,d.description FROM pg_catalog.pg_namespace n LEFT OUTER JOIN pg_catalog.pg_description d "
            "ON d.objoid=n.oid AND d.objsubid=0 AND d.classoid='pg_namespace'::regclass ORDER BY nspname", d.between(6, 9))
    a.tick()
    a.q(db, "SELECT c.oid,c.*,t.relname as tabrelname,rt.relnamespace as refnamespace,d.description FROM pg_catalog.pg_class c "
            "LEFT OUTER JOIN pg_catalog.pg_class t ON t.oid=c.reltoastrelid LEFT OUTER JOIN pg_catalog.pg_class rt "
            "ON rt.oid=c.reloftype LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 "
            f"WHERE c.relnamespace={d.pick((2200, 16390, 16421))} AND c.relkind not in ('i','I','c')", d.between(8, 40))
    if d.chance(0.6):
        a.tick()
        a.q(db, "SELECT c.relname,a.*,pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) as def_value FROM pg_catalog.pg_attribute a "
                "INNER JOIN pg_catalog.pg_class c ON (a.attrelid=c.oid) LEFT OUTER JOIN pg_catalog.pg_attrdef ad "
                f"ON (a.attrelid=ad.adrelid AND a.attnum = ad.adnum) WHERE NOT a.attisdropped AND c.oid={d.between(16400, 99000)} "
                "ORDER BY a.attnum", d.between(4, 20))


# ---------------------------------------------------------------- finance

def finance_payment_lookup(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    a.app = FINANCE_PORTAL
    oid = order_id(d, a.day)
    a.q(BILLING, "SELECT id, order_id, amount, method, status, paid_at, settled_at FROM finance.payments "
                 f"WHERE order_id = {oid}", _found(a), obj=O_PAYMENTS)
    if d.chance(0.3):
        a.tick()
        a.q(CRM, f"SELECT id, order_no, status, total_amount, pay_method FROM orders WHERE id = {oid}", 1, obj=O_ORDERS)


def finance_refunds(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    a.app = FINANCE_PORTAL
    a.q(BILLING, "SELECT r.id, r.order_id, r.amount, r.reason, r.card_holder, r.bank_card, r.created_at FROM finance.refunds r "
                 "WHERE r.status = 'PENDING' ORDER BY r.created_at LIMIT 50", d.between(3, 50), obj=O_REFUNDS, sens=True, cat="B")
    for _ in range(d.between(1, 6)):
        a.wait(15, 120)
        a.q(BILLING, f"UPDATE finance.refunds SET status = '{d.pick(('APPROVED', 'APPROVED', 'REJECTED'))}', "
                     f"approved_by = '{a.account}' WHERE id = {d.between(1, 1_100_000)}", 1, "UPDATE", O_REFUNDS)


def finance_settlements(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    if "uses_excel" in p.habits and d.chance(0.4):
        a.app = ODBC
        a.account = e.accounts[1] if len(e.accounts) > 1 else e.account
    else:
        a.app = FINANCE_PORTAL
    a.q(BILLING, "SELECT channel, settle_date, gross, fee, net, status FROM finance.settlements "
                 f"WHERE settle_date >= '{a.ago(d.pick((7, 14, 31)))}' ORDER BY settle_date", d.between(10, 70), obj=O_SETTLEMENTS)
    a.wait(10, 120)
    a.q(BILLING, "SELECT account_code, sum(debit) AS debit, sum(credit) AS credit FROM finance.ledger_entries "
                 f"WHERE entry_date BETWEEN '{a.ago(30)}' AND '{a.iso}' GROUP BY account_code ORDER BY account_code",
        d.between(40, 160), obj=O_LEDGER)
    a.account = e.account


def finance_ledger(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    a.app = FINANCE_PORTAL
    k = d.between(1, 4)
    values = ", ".join(f"('{d.pick(('1002', '2202', '6001', '6401', '2221'))}', {d.between(10, 90000)}.{d.below(100):02d}, 0, "
                       f"'{a.iso}', '{d.pick(('退款冲销', '渠道手续费', '结算差异调整', '运费结算'))}', {order_id(d, a.day)})"
                       for _ in range(k))
    a.q(BILLING, f"INSERT INTO finance.ledger_entries (account_code, debit, credit, entry_date, memo, ref_id) VALUES {values}",
        k, "INSERT", O_LEDGER)


def finance_invoice(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    a.app = FINANCE_PORTAL
    oid = order_id(d, a.day)
    a.q(BILLING, "SELECT id, buyer_name, buyer_tax_no, amount, tax_amount, issued_at FROM finance.invoices "
                 f"WHERE order_id = {oid}", _found(a), obj=O_INVOICES, sens=True)
    if d.chance(0.3):
        a.wait(20, 120)
        a.q(BILLING, "INSERT INTO finance.invoices (order_id, customer_id, buyer_name, buyer_tax_no, buyer_phone, amount, "
                     f"tax_amount, issued_at) VALUES ({oid}, {customer_id(d)}, '{fakes.person_name(d)}', "
                     f"'91330{d.below(10**13):013d}', '{phone(d)}', {d.between(20, 9000)}.00, {d.between(1, 900)}.00, NOW())",
            1, "INSERT", O_INVOICES)


def finance_orders(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    client(a, p, CRM)
    ids = ", ".join(str(order_id(d, a.day)) for _ in range(d.between(1, 12)))
    a.q(CRM, f"SELECT id, order_no, status, total_amount, pay_method, created_at FROM orders WHERE id IN ({ids})",
        ids.count(",") + 1, obj=O_ORDERS)


def finance_reconcile(a: Activity, p: Persona, e: Employee) -> None:
    """Month-end reconciliation: day by day, payments with their bank cards."""
    d = a.d
    client(a, p, BILLING)
    month_start = a.day.replace(day=1)
    span = (a.day - month_start).days + 1
    share = d.uniform(0.35, 0.7)                 # the close is split over its days
    for i in range(span):
        if not d.chance(share):
            continue
        day = month_start.toordinal() + i
        first = a.ago(a.day.toordinal() - day)
        nxt = a.ago(a.day.toordinal() - day - 1)
        a.q(BILLING, "SELECT p.id, p.order_id, p.amount, p.method, p.card_holder, p.bank_card, p.paid_at, p.settled_at "
                     f"FROM finance.payments p WHERE p.paid_at >= '{first}' AND p.paid_at < '{nxt}' "
                     "AND p.method = 'bank_card' ORDER BY p.id", d.between(1500, 9000), obj=O_PAYMENTS, sens=True, cat="B")
        a.wait(20, 240)
        if d.chance(0.3):
            a.q(BILLING, "SELECT s.channel, s.settle_date, s.gross, sum(p.amount) AS paid FROM finance.settlements s "
                         "JOIN finance.payments p ON p.settled_at::date = s.settle_date "
                         f"WHERE s.settle_date = '{first}' GROUP BY 1, 2, 3", d.between(3, 8), obj=O_PAYMENTS_SETTLEMENTS)
            a.wait(20, 200)


# ---------------------------------------------------------------- DBA

_PG_MONITOR = (
    ("SELECT pid, usename, application_name, client_addr, state, now() - query_start AS runtime, left(query, 80) "
     "FROM pg_stat_activity WHERE state <> 'idle' ORDER BY runtime DESC", (3, 60)),
    ("SELECT relname, n_live_tup, n_dead_tup, last_autovacuum FROM pg_stat_user_tables ORDER BY n_dead_tup DESC LIMIT 20", (20, 20)),
    ("SELECT locktype, relation::regclass, mode, granted, pid FROM pg_locks WHERE NOT granted", (0, 5)),
    ("SELECT client_addr, state, sent_lsn, replay_lsn, replay_lag FROM pg_stat_replication", (2, 2)),
    ("SELECT query, calls, round(mean_exec_time::numeric, 2) AS mean_ms FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 20", (20, 20)),
    ("SELECT pg_size_pretty(pg_database_size(current_database()))", (1, 1)),
    ("SELECT datname, numbackends, xact_commit, xact_rollback, blks_hit, blks_read FROM pg_stat_database", (4, 6)),
)
_MY_MONITOR = (
    ("SHOW PROCESSLIST", (10, 90)), ("SHOW SLAVE STATUS", (1, 1)), ("SHOW ENGINE INNODB STATUS", (1, 1)),
    ("SHOW GLOBAL STATUS LIKE 'Threads_%'", (4, 4)),
    ("SELECT table_name, table_rows, data_length, index_length FROM information_schema.tables "
     "WHERE table_schema = 'logistics' ORDER BY data_length DESC", (8, 8)),
)


def _dba_db(a: Activity, p: Persona) -> str:
    return LOGISTICS if ("mariadb" in p.habits and a.d.chance(0.35)) else a.d.pick((CRM, CRM, BILLING))


def dba_monitor(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    a.account = e.admin_account()
    db = _dba_db(a, p)
    client(a, p, db)
    pool = _MY_MONITOR if db == LOGISTICS else _PG_MONITOR
    for _ in range(d.between(2, 8)):
        sql, (lo, hi) = d.pick(pool)
        a.q(db, sql, d.between(lo, hi), "OTHER" if sql.startswith("SHOW") else "SELECT")
        a.wait(3, 60)
    a.account = e.account


def dba_counts(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    if d.chance(0.5):
        a.account = e.admin_account()
    db = _dba_db(a, p)
    client(a, p, db)
    table, obj = {CRM: (("customers", O_CUSTOMERS), ("orders", O_ORDERS), ("tickets", O_TICKETS)),
                  BILLING: (("finance.payments", O_PAYMENTS), ("finance.refunds", O_REFUNDS)),
                  LOGISTICS: (("waybills", O_WAYBILLS), ("scan_events", O_SCANS))}[db][d.below(2)]
    col = "created_at" if "payments" not in table else "paid_at"
    a.q(db, f"SELECT count(*) FROM {table} WHERE {col} >= '{a.ago(d.between(0, 3))}'", 1, obj=obj)
    a.account = e.account


_PG_DDL = (
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_orders_store_created ON public.orders (store_id, created_at)",
    "ALTER TABLE public.tickets ADD COLUMN IF NOT EXISTS sla_due_at timestamptz",
    "DROP INDEX CONCURRENTLY IF EXISTS public.idx_orders_legacy_status",
    "ALTER TABLE public.coupons ALTER COLUMN code SET NOT NULL",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_tickets_assignee_status ON public.tickets (assignee, status)",
    "COMMENT ON COLUMN public.customers.remark IS 'free text from CS, no personal data'",
)
_MY_DDL = (
    "ALTER TABLE waybills ADD INDEX idx_dest_status (dest_station_id, status)",
    "ALTER TABLE pickup_requests MODIFY COLUMN status VARCHAR(24) NOT NULL",
    "CREATE INDEX idx_scan_events_time ON scan_events (scanned_at)",
)


def dba_ddl(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    a.account = e.admin_account()
    db = _dba_db(a, p)
    client(a, p, db)
    a.q(db, d.pick(_MY_DDL if db == LOGISTICS else _PG_DDL), None, "DDL")
    a.account = e.account


def dba_maintenance(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    a.account = e.admin_account()
    db = _dba_db(a, p)
    client(a, p, db)
    if db == LOGISTICS:
        a.q(db, f"{d.pick(('ANALYZE TABLE', 'OPTIMIZE TABLE', 'CHECK TABLE'))} {d.pick(('scan_events', 'waybills', 'routes'))}",
            d.between(1, 2), "OTHER")
    else:
        table = d.pick(("public.orders", "public.tickets", "public.coupons", "public.inventory"))
        a.q(db if db == CRM else CRM, d.pick((f"VACUUM (VERBOSE, ANALYZE) {table}", f"ANALYZE {table}",
                                              f"REINDEX INDEX CONCURRENTLY {table}_pkey")), None, "OTHER")
    a.account = e.account


def dba_users(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    a.account = e.admin_account()
    client(a, p, CRM)
    who = f"{d.pick(fakes.SURNAMES)[1]}_{d.pick(fakes.GIVEN)[1]}"
    a.q(CRM, d.pick((f"GRANT SELECT ON public.orders, public.order_items TO {who}",
                     f"ALTER ROLE {who} VALID UNTIL '{a.ago(-90)}'",
                     f"REVOKE INSERT, UPDATE ON public.tickets FROM {who}",
                     f"CREATE ROLE {who} LOGIN IN ROLE cs_agent")), None, "DDL")
    a.account = e.account


def dba_dump_reference(a: Activity, p: Persona, e: Employee) -> None:
    """pg_dump of reference (non-personal) tables for a test environment."""
    d = a.d
    a.account = e.admin_account()
    a.app = "pg_dump"
    a.q(CRM, "SET statement_timeout = 0", None, "OTHER")
    a.q(CRM, "SELECT pg_catalog.set_config('search_path', '', false)", 1)
    for table, obj in d.sample((("products", O_PRODUCTS), ("categories", None), ("promotions", O_PROMOS), ("stores", O_STORES)),
                               d.between(1, 3)):
        a.wait(0.5, 20)
        a.q(CRM, f"COPY public.{table} TO stdout;", None, "COPY", obj)
    a.account = e.account


def dba_quality_check(a: Activity, p: Persona, e: Employee) -> None:
    """A rare legitimate large read of personal columns: a data-quality check."""
    d = a.d
    client(a, p, CRM)
    a.q(CRM, "SELECT id, phone FROM customers WHERE phone !~ '^1[3-9][0-9]{9}$' LIMIT 5000", d.between(300, 3000),
        obj=O_CUSTOMERS, sens=True)
    a.wait(60, 600)
    if d.chance(0.5):
        a.q(CRM, "SELECT id, id_card_no FROM customers WHERE length(id_card_no) <> 18 OR id_card_no !~ '^[0-9]{17}[0-9X]$'",
            d.between(40, 800), obj=O_CUSTOMERS, sens=True, cat="I")
        a.wait(60, 300)
    a.q(CRM, "UPDATE customers SET phone = NULL WHERE phone !~ '^1[3-9][0-9]{9}$' AND updated_at < now() - interval '3 years'",
        d.between(50, 900), "UPDATE", O_CUSTOMERS)


def dba_window(a: Activity, p: Persona, e: Employee) -> None:
    """A maintenance window: archiving, rebuilds, schema migration, checks."""
    d = a.d
    a.account = e.admin_account()
    client(a, p, CRM)
    a.q(CRM, "SELECT pid, state, query FROM pg_stat_activity WHERE datname = 'crm' AND state <> 'idle'", d.between(2, 20))
    a.wait(30, 120)
    cutoff = a.ago(d.between(1000, 1500))
    if d.chance(0.6):
        a.q(CRM, f"SELECT count(*) FROM customers WHERE last_order_at < '{cutoff}'", 1, obj=O_CUSTOMERS)
        a.wait(20, 90)
        n = d.between(80_000, 400_000)
        a.q(CRM, f"INSERT INTO customers_archive SELECT *, now() FROM customers WHERE last_order_at < '{cutoff}'", n, "INSERT", O_ARCHIVE)
        a.wait(200, 900)
        a.q(CRM, f"DELETE FROM customers WHERE last_order_at < '{cutoff}'", n, "DELETE", O_CUSTOMERS)
        a.wait(60, 300)
    for _ in range(d.between(3, 12)):
        table = d.pick(("public.orders", "public.order_items", "public.tickets", "public.coupons", "public.customers"))
        a.q(CRM, d.pick((f"VACUUM (FULL, ANALYZE) {table}", f"REINDEX TABLE CONCURRENTLY {table}", f"ANALYZE {table}")), None, "OTHER")
        a.wait(60, 900)
    for _ in range(d.between(1, 4)):
        a.q(CRM, d.pick(_PG_DDL), None, "DDL")
        a.wait(10, 200)
    if "mariadb" in p.habits:
        client(a, p, LOGISTICS)
        for _ in range(d.between(2, 6)):
            a.q(LOGISTICS, f"OPTIMIZE TABLE {d.pick(('scan_events', 'waybills', 'delivery_exceptions'))}", 2, "OTHER")
            a.wait(120, 900)
        a.q(LOGISTICS, d.pick(_MY_DDL), None, "DDL")
    for _ in range(d.between(3, 10)):
        sql, (lo, hi) = d.pick(_PG_MONITOR)
        client(a, p, CRM)
        a.q(CRM, sql, d.between(lo, hi))
        a.wait(20, 300)
    a.account = e.account


def dba_oncall(a: Activity, p: Persona, e: Employee) -> None:
    """Woken at night: diagnose a slow query or replication lag from the VPN."""
    d = a.d
    a.account = e.admin_account()
    for _ in range(d.between(6, 30)):
        db = _dba_db(a, p)
        client(a, p, db)
        sql, (lo, hi) = d.pick(_MY_MONITOR if db == LOGISTICS else _PG_MONITOR)
        a.q(db, sql, d.between(lo, hi), "OTHER" if sql.startswith("SHOW") else "SELECT")
        a.wait(5, 120)
    if d.chance(0.5):
        client(a, p, CRM)
        a.q(CRM, f"SELECT pg_terminate_backend({d.between(1200, 4_000_000)})", 1)
    a.account = e.account


# ---------------------------------------------------------------- developer

def _dev_db(a: Activity, p: Persona) -> str:
    return LOGISTICS if ("logistics_team" in p.habits and a.d.chance(0.6)) else CRM


def developer_staging(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    if "python" in p.habits and d.chance(0.3):
        a.app = None
    else:
        client(a, p, CRM)
    k = d.below(6)
    if k == 0:
        a.q(CRM, f"SELECT * FROM staging.test_orders WHERE status = '{d.pick(('PAID', 'SHIPPED', 'PENDING_PAY'))}' "
                 "ORDER BY id DESC LIMIT 100", d.between(0, 100), obj=O_TEST_ORDERS)
    elif k == 1:
        a.q(CRM, f"SELECT * FROM staging.customers_masked WHERE city = '{d.pick(fakes.CITIES).name}' LIMIT 50",
            d.between(0, 50), obj=O_MASKED)
    elif k == 2:
        a.q(CRM, "INSERT INTO staging.test_orders (order_no, customer_id, store_id, channel, status, total_amount, created_at) "
                 f"VALUES ('{order_no(d, a.day)}', {d.between(1, 50000)}, {d.between(1, 350)}, 'app', 'PENDING_PAY', "
                 f"{d.between(5, 900)}.00, now())", 1, "INSERT", O_TEST_ORDERS)
    elif k == 3:
        a.q(CRM, f"UPDATE staging.test_orders SET status = 'SHIPPED' WHERE id = {d.between(1, 200_000)}", d.between(0, 1),
            "UPDATE", O_TEST_ORDERS)
    elif k == 4:
        a.q(CRM, "SELECT count(*), status FROM staging.test_orders GROUP BY status", d.between(4, 7), obj=O_TEST_ORDERS)
    else:
        a.q(CRM, "DELETE FROM staging.test_orders WHERE created_at < now() - interval '30 days'", d.between(0, 3000),
            "DELETE", O_TEST_ORDERS)


def developer_metadata(a: Activity, p: Persona, e: Employee) -> None:
    _metadata(a, p, _dev_db(a, p))


def developer_debug(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    db = _dev_db(a, p)
    client(a, p, db)
    if db == LOGISTICS:
        wb = waybill_no(d)
        a.q(db, f"SELECT * FROM waybills WHERE waybill_no = '{wb}'", _found(a), obj=O_WAYBILLS, sens=True)
        a.wait(5, 60)
        a.q(db, f"SELECT * FROM scan_events WHERE waybill_no = '{wb}' ORDER BY scanned_at", d.between(2, 14), obj=O_SCANS)
        return
    k = d.below(4)
    if k == 0:
        a.q(CRM, f"SELECT id, order_no, status, updated_at FROM orders WHERE order_no = '{order_no(d, a.day)}'", _found(a), obj=O_ORDERS)
    elif k == 1:
        a.q(CRM, f"SELECT * FROM orders WHERE id = {order_id(d, a.day)}", _found(a), obj=O_ORDERS, sens=True)
    elif k == 2:
        a.q(CRM, f"SELECT id, phone, created_at, updated_at FROM customers WHERE id = {customer_id(d)}", 1, obj=O_CUSTOMERS, sens=True)
    else:
        a.q(CRM, f"SELECT sku_id, warehouse_id, on_hand, reserved FROM inventory WHERE sku_id = {d.between(1, 180000)}",
            d.between(1, 6), obj=O_INVENTORY)


def developer_explain(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    client(a, p, CRM)
    a.q(CRM, d.pick((
        f"EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM orders WHERE customer_id = {customer_id(d)} ORDER BY created_at DESC LIMIT 20",
        f"EXPLAIN SELECT o.id FROM orders o JOIN order_items i ON i.order_id = o.id WHERE o.store_id = {d.between(1, 350)} "
        f"AND o.created_at >= '{a.ago(7)}'",
        "EXPLAIN ANALYZE SELECT count(*) FROM tickets WHERE assignee = 'test' AND status = 'open'",
    )), None, "OTHER")


def developer_scratch(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    client(a, p, CRM)
    k = d.between(1, 999)
    a.q(CRM, f"CREATE TABLE staging.tmp_fix_{k} AS SELECT id, status, updated_at FROM staging.test_orders "
             f"WHERE created_at >= '{a.ago(14)}'", None, "DDL", O_TEST_ORDERS)
    a.wait(60, 900)
    a.q(CRM, f"SELECT status, count(*) FROM staging.tmp_fix_{k} GROUP BY status", d.between(3, 6))
    a.wait(60, 900)
    a.q(CRM, f"DROP TABLE IF EXISTS staging.tmp_fix_{k}", None, "DDL")


def developer_sample(a: Activity, p: Persona, e: Employee) -> None:
    """An occasional, legitimate look at 100 real customers (test data realism)."""
    d = a.d
    client(a, p, CRM)
    a.q(CRM, d.pick(("SELECT * FROM customers ORDER BY random() LIMIT 100",
                     "SELECT * FROM customers TABLESAMPLE SYSTEM (0.01) LIMIT 100",
                     f"SELECT * FROM customers WHERE id > {customer_id(d)} ORDER BY id LIMIT 100")),
        100, obj=O_CUSTOMERS, sens=True, cat="IB")


def developer_hotfix(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    client(a, p, CRM)
    cutoff = a.ago(d.between(2, 5))
    a.q(CRM, f"SELECT count(*) FROM orders WHERE status = 'PENDING_PAY' AND created_at < '{cutoff}'", 1, obj=O_ORDERS)
    a.wait(30, 300)
    n = d.between(300, 8000)
    a.q(CRM, "BEGIN", None, "OTHER")
    a.q(CRM, f"UPDATE orders SET status = 'CLOSED', updated_at = now() WHERE status = 'PENDING_PAY' AND created_at < '{cutoff}'",
        n, "UPDATE", O_ORDERS)
    a.wait(5, 60)
    a.q(CRM, "COMMIT", None, "OTHER")

"""Service accounts: applications with huge, steady, rhythmic volumes.

Each kind (the shop backend, the dispatch API, backups, ETL, billing, the SMS
notifier, monitoring, search sync, Tableau Server) has its own daily volume,
its own hourly profile, its own statement shapes and connection pool. Timing is
drawn in bulk with numpy; statements are then written one by one.
"""

from __future__ import annotations

import numpy as np

from detector.simulate import fakes
from detector.simulate.activity import NO_LOGIN
from detector.simulate.company import Employee
from detector.simulate.dice import Dice, generator
from detector.simulate.fakes import waybill_no
from detector.simulate.plans import HOUR, MIN, DayContext
from detector.simulate.schema import (
    BILLING, CRM, LOGISTICS, O_ADDRESSES, O_COUPONS, O_CUSTOMERS, O_INVENTORY, O_ITEMS, O_LEDGER, O_ORDERS,
    O_ORDERS_CUSTOMERS, O_PAYMENTS, O_PRODUCTS, O_REFUNDS, O_SCANS, O_SETTLEMENTS, O_WAYBILLS, O_COURIERS, RELATIONS,
)

CONSUMER = np.array([0.35, 0.2, 0.12, 0.08, 0.07, 0.1, 0.25, 0.5, 0.75, 0.95, 1.0, 1.0, 0.95, 0.9, 0.9, 0.9, 0.85, 0.8,
                     0.85, 1.0, 1.1, 1.1, 0.9, 0.6])
COURIER = np.array([0.02, 0.01, 0.01, 0.01, 0.02, 0.05, 0.2, 0.6, 0.9, 1.0, 1.0, 0.95, 0.8, 0.85, 0.95, 1.0, 0.95, 0.85,
                    0.7, 0.5, 0.35, 0.2, 0.08, 0.04])
OFFICE = np.array([0.01] * 7 + [0.2, 0.7, 1.0, 1.0, 0.9, 0.5, 0.8, 1.0, 1.0, 0.9, 0.6, 0.3, 0.15, 0.1, 0.05, 0.02, 0.01])
FLAT = np.ones(24)

_APP = {"crm_web": "crm-backend", "backup": "backup-agent", "dispatch_api": "dispatch-api", "etl": "airflow-etl",
        "billing": "billing-api", "notify": "notify-worker", "monitor": "zabbix-agent2", "search_sync": "search-sync",
        "report": "tableau-server"}
_HOSTS = {"crm_web": ("10.50.1.11", "10.50.1.12", "10.50.1.13", "10.50.1.14"), "backup": ("10.50.9.5",),
          "dispatch_api": ("10.50.2.21", "10.50.2.22"), "etl": ("10.50.3.5",), "billing": ("10.50.4.11", "10.50.4.12"),
          "notify": ("10.50.5.7",), "monitor": ("10.50.9.9",), "search_sync": ("10.50.6.3",), "report": ("10.50.7.2",)}
_VOLUME = {"crm_web": (9_000, 16_000), "dispatch_api": (6_000, 11_000), "billing": (4_000, 8_000),
           "report": (1_800, 3_200)}


class ServiceDay:
    """Writes one service account's day of records."""

    def __init__(self, e: Employee, ctx: DayContext, d: Dice, rng: np.random.Generator, out: list, release_day: int,
                 rotation_day: int) -> None:
        self.e, self.ctx, self.d, self.rng, self.out = e, ctx, d, rng, out
        kind = e.service or ""
        self.kind = kind
        self.app = _APP[kind]
        self.hosts = _HOSTS[kind]
        self.account = e.account
        self.release_day, self.rotation_day = release_day, rotation_day
        self.pool = 4 if len(self.hosts) > 1 else 3
        self.life = HOUR * (1 + (e.index % 3))

    # -- writing ---------------------------------------------------------

    def rec(self, t: int, db: str, sql: str, rows: int | None, action: str = "SELECT", obj: tuple | None = None,
            host: str | None = None, ok: bool = True) -> None:
        # Pool connection and host follow from the time's low digits: as good as random, much cheaper.
        slot = (t // self.life) * 16 + (t // 7) % self.pool
        if host is None:
            host = self.hosts[(t // 13) % len(self.hosts)]
        self.out.append((t, db, self.app, host, action, sql, rows, ok, obj, -1, self.account, slot))

    def times(self, n: int, profile: np.ndarray) -> list[int]:
        if n <= 0:
            return []
        w = profile / profile.sum()
        hours = self.rng.choice(24, size=n, p=w)
        t = hours * HOUR + self.rng.integers(0, HOUR, size=n)
        t.sort()
        return t.tolist()

    def periodic(self, period_ms: int, jitter_ms: int, start: int = 0, end: int = 24 * HOUR) -> list[int]:
        base = np.arange(start, end, period_ms)
        t = base + self.rng.integers(0, max(1, jitter_ms), size=len(base))
        return [x for x in t.tolist() if x < end]

    def volume(self, lo: int, hi: int, profile_kind: str = "consumer") -> int:
        ctx = self.ctx
        base = lo + (hi - lo) * ((self.e.index * 7919) % 100) / 100.0      # each service its own size
        f = self.d.lognormal(1.0, 0.08)
        if profile_kind == "consumer":
            f *= 1.15 if ctx.day.weekday() >= 5 or ctx.holiday else 1.0
            if ctx.festival:
                f *= self.d.uniform(2.5, 3.5)
        elif profile_kind == "office":
            f *= 1.0 if ctx.workday else 0.75
        elif profile_kind == "courier":
            if ctx.post_festival:
                f *= self.d.uniform(1.5, 2.0)
            if ctx.holiday:
                f *= 0.7
        return int(base * f)

    # -- the day ---------------------------------------------------------

    def run(self) -> None:
        getattr(self, f"_{self.kind}")()
        if self.ctx.index == self.rotation_day:
            self._rotation_failures()

    def _rotation_failures(self) -> None:
        """A password rotated on the vault but not yet on one host: a burst of failed logins."""
        d = self.d
        t0 = d.between(9 * 60, 17 * 60) * MIN
        db = {"dispatch_api": LOGISTICS, "billing": BILLING}.get(self.kind, CRM)
        host = self.hosts[-1]
        for k in range(d.between(20, 200)):
            t = t0 + k * d.between(2_000, 9_000)
            self.out.append((t, db, self.app, host, "LOGIN_FAILED", None, None, False, None, -1, self.account, NO_LOGIN))

    def _crm_web(self) -> None:
        d, day = self.d, self.ctx.day
        n = self.volume(*_VOLUME["crm_web"])
        released = self.ctx.index >= self.release_day
        for t in self.times(n, CONSUMER):
            u = d.u()
            if u < 0.22:
                self.rec(t, CRM, "select c1_0.id,c1_0.name,c1_0.phone,c1_0.member_level,c1_0.points from customers c1_0 "
                                 "where c1_0.id=$1", 1, obj=O_CUSTOMERS)
            elif u < 0.37:
                self.rec(t, CRM, "select o1_0.id,o1_0.order_no,o1_0.status,o1_0.total_amount,o1_0.created_at from orders o1_0 "
                                 "where o1_0.customer_id=$1 order by o1_0.created_at desc fetch first $2 rows only",
                         d.geometric(4, 20), obj=O_ORDERS)
            elif u < 0.45:
                self.rec(t, CRM, "insert into orders (channel,customer_id,order_no,pay_method,ship_address,ship_name,ship_phone,"
                                 "status,store_id,total_amount,created_at,id) values ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)",
                         1, "INSERT", O_ORDERS)
            elif u < 0.57:
                self.rec(t, CRM, "insert into order_items (discount,order_id,quantity,sku_id,unit_price,id) values "
                                 "($1,$2,$3,$4,$5,$6)", 1, "INSERT", O_ITEMS)
            elif u < 0.67:
                self.rec(t, CRM, "update orders set status=$1,updated_at=$2 where id=$3", 1, "UPDATE", O_ORDERS)
            elif u < 0.82:
                self.rec(t, CRM, "select p1_0.id,p1_0.sku,p1_0.name,p1_0.price,p1_0.status from products p1_0 "
                                 "where p1_0.id=any($1)", d.between(1, 30), obj=O_PRODUCTS)
            elif u < 0.9:
                self.rec(t, CRM, "update inventory set reserved=reserved+$1,updated_at=now() where sku_id=$2 and warehouse_id=$3",
                         d.between(0, 1), "UPDATE", O_INVENTORY)
            elif u < 0.95:
                self.rec(t, CRM, "select a1_0.id,a1_0.receiver_name,a1_0.receiver_phone,a1_0.province,a1_0.city,"
                                 "a1_0.detail_address from customer_addresses a1_0 where a1_0.customer_id=$1 and a1_0.is_default",
                         1, obj=O_ADDRESSES)
            elif released and u < 0.975:
                # A release added real-name verification: a new personal column for this service.
                self.rec(t, CRM, "select c1_0.id,c1_0.name,c1_0.id_card_no from customers c1_0 where c1_0.id=$1", 1, obj=O_CUSTOMERS)
            else:
                self.rec(t, CRM, "select c1_0.id,c1_0.code,c1_0.status from coupons c1_0 where c1_0.customer_id=$1 "
                                 "and c1_0.status='issued'", d.between(0, 5), obj=O_COUPONS)
            if d.u() < 0.0007:
                self.out[-1] = self.out[-1][:6] + (None, False) + self.out[-1][8:]   # deadlock / timeout

    def _dispatch_api(self) -> None:
        d, ctx = self.d, self.ctx
        n = self.volume(*_VOLUME["dispatch_api"], profile_kind="courier")
        for t in self.times(n, COURIER):
            u = d.u()
            h, rem = divmod(t // 1000, 3600)
            stamp = f"{ctx.iso} {h:02d}:{rem // 60:02d}:{rem % 60:02d}"
            if u < 0.35:
                self.rec(t, LOGISTICS, "INSERT INTO scan_events (waybill_no, station_id, scan_type, operator_id, scanned_at) "
                                       f"VALUES ('{waybill_no(d)}', {d.between(101, 998)}, '{d.pick(('ARRIVE', 'DEPART', 'DELIVER', 'PICKUP'))}', "
                                       f"{d.between(5000, 9000)}, '{stamp}')", 1, "INSERT", O_SCANS)
            elif u < 0.5:
                self.rec(t, LOGISTICS, "UPDATE waybills SET status = 'DELIVERED', delivered_at = NOW(), updated_at = NOW() "
                                       f"WHERE waybill_no = '{waybill_no(d)}'", 1, "UPDATE", O_WAYBILLS)
            elif u < 0.75:
                self.rec(t, LOGISTICS, "SELECT waybill_no, status, dest_station_id, courier_id FROM waybills "
                                       f"WHERE waybill_no = '{waybill_no(d)}'", 1, obj=O_WAYBILLS)
            elif u < 0.85:
                city = d.pick(fakes.CITIES)
                self.rec(t, LOGISTICS,
                         "INSERT INTO waybills (waybill_no, order_no, sender_name, sender_phone, sender_address, receiver_name, "
                         "receiver_phone, receiver_province, receiver_city, receiver_address, weight_g, status, origin_station_id, "
                         f"dest_station_id, created_at) VALUES ('{waybill_no(d)}', '{fakes.order_no(d, ctx.day)}', '{fakes.person_name(d)}', "
                         f"'{fakes.phone(d)}', '{fakes.address(d)}', '{fakes.person_name(d)}', '{fakes.phone(d)}', '{city.province}', "
                         f"'{city.short}', '{fakes.address(d, city)}', {d.between(80, 20000)}, 'CREATED', {d.between(101, 998)}, "
                         f"{d.between(101, 998)}, '{stamp}')", 1, "INSERT", O_WAYBILLS)
            elif u < 0.95:
                self.rec(t, LOGISTICS, "SELECT receiver_name, receiver_phone, receiver_address FROM waybills "
                                       f"WHERE waybill_no = '{waybill_no(d)}'", 1, obj=O_WAYBILLS)
            else:
                self.rec(t, LOGISTICS, f"UPDATE couriers SET status = '{d.pick(('ON_DUTY', 'OFF_DUTY', 'BREAK'))}' "
                                       f"WHERE courier_id = {fakes.courier_id(d)}", 1, "UPDATE", O_COURIERS)

    def _billing(self) -> None:
        d = self.d
        n = self.volume(*_VOLUME["billing"])
        for t in self.times(n, CONSUMER):
            u = d.u()
            if u < 0.2:
                self.rec(t, BILLING, "INSERT INTO finance.payments (order_id, customer_id, amount, currency, method, bank_card, "
                                     "card_holder, status, paid_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)", 1, "INSERT", O_PAYMENTS)
            elif u < 0.4:
                self.rec(t, BILLING, "UPDATE finance.payments SET status = $1, settled_at = $2 WHERE id = $3", 1, "UPDATE", O_PAYMENTS)
            elif u < 0.7:
                self.rec(t, BILLING, "SELECT id, status, amount FROM finance.payments WHERE order_id = $1", 1, obj=O_PAYMENTS)
            elif u < 0.78:
                self.rec(t, BILLING, "SELECT id, bank_card, card_holder, amount FROM finance.payments WHERE id = $1", 1, obj=O_PAYMENTS)
            elif u < 0.92:
                self.rec(t, BILLING, "INSERT INTO finance.ledger_entries (account_code, debit, credit, entry_date, memo, ref_id) "
                                     "VALUES ($1, $2, $3, $4, $5, $6)", 1, "INSERT", O_LEDGER)
            else:
                self.rec(t, BILLING, "SELECT id, payment_id, amount, bank_card, card_holder FROM finance.refunds "
                                     "WHERE status = 'APPROVED' AND paid_out_at IS NULL LIMIT 100", d.geometric(8, 100), obj=O_REFUNDS)
        t = 3 * HOUR + d.between(0, 10) * MIN
        self.rec(t, BILLING, "INSERT INTO finance.settlements (channel, settle_date, gross, fee, net, status) SELECT method, $1::date, "
                             "sum(amount), sum(amount) * 0.006, sum(amount) * 0.994, 'OPEN' FROM finance.payments "
                             "WHERE paid_at >= $1 AND paid_at < $2 GROUP BY method", d.between(4, 6), "INSERT", O_SETTLEMENTS)

    def _notify(self) -> None:
        d, ctx = self.d, self.ctx
        factor = d.uniform(2.0, 3.0) if ctx.festival else 1.0
        for t in self.periodic(30_000, 2_000):
            level = CONSUMER[(t // HOUR) % 24]
            n = min(200, int(d.expo(60 * level * factor)))
            self.rec(t, CRM, "SELECT o.id, o.order_no, c.name, c.phone FROM orders o JOIN customers c ON c.id = o.customer_id "
                             "WHERE o.status = 'SHIPPED' AND o.notified_at IS NULL ORDER BY o.id LIMIT 200", n, obj=O_ORDERS_CUSTOMERS)
            if n:
                self.rec(t + 300 + d.below(3000), CRM, "UPDATE orders SET notified_at = now() WHERE id = ANY($1)", n, "UPDATE", O_ORDERS)

    def _monitor(self) -> None:
        d = self.d
        for t in self.periodic(60_000, 3_000):
            self.rec(t, CRM, "SELECT datname, numbackends, xact_commit, xact_rollback, blks_read, blks_hit, deadlocks "
                             "FROM pg_stat_database", d.between(4, 6))
            self.rec(t + 40, CRM, "SELECT state, count(*) FROM pg_stat_activity GROUP BY state", d.between(2, 5))
            self.rec(t + 90, BILLING, "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'", 1)
            self.rec(t + 140, LOGISTICS, "SHOW GLOBAL STATUS", d.between(480, 520), "OTHER")
            if (t // 60_000) % 5 == 0:
                self.rec(t + 200, LOGISTICS, "SHOW SLAVE STATUS", 1, "OTHER")

    def _search_sync(self) -> None:
        d, iso = self.d, self.ctx.iso
        for t in self.periodic(30_000, 8_000):
            self.rec(t, CRM, "SELECT id, sku, name, brand, price, status, updated_at FROM products WHERE updated_at > $1 "
                             "ORDER BY updated_at, id LIMIT 500", d.geometric(6 * OFFICE[(t // HOUR) % 24] + 0.5, 500), obj=O_PRODUCTS)
            if d.chance(0.25):
                self.rec(t + 500, CRM, "SELECT sku_id, sum(on_hand - reserved) AS available FROM inventory WHERE updated_at > $1 "
                                       "GROUP BY sku_id", d.geometric(40, 3000), obj=O_INVENTORY)

    def _report(self) -> None:
        d, ctx = self.d, self.ctx
        n = self.volume(*_VOLUME["report"], profile_kind="office")
        since = ctx.day.replace(day=1).isoformat()
        for t in self.times(n, OFFICE):
            u = d.u()
            if u < 0.4:
                self.rec(t, CRM, 'SELECT "orders"."channel" AS "channel", SUM("orders"."total_amount") AS "sum:total_amount:ok" '
                                 f'FROM "public"."orders" "orders" WHERE ("orders"."created_at" >= (DATE \'{since}\')) GROUP BY 1',
                         d.between(4, 6), obj=O_ORDERS)
            elif u < 0.7:
                self.rec(t, CRM, 'SELECT "customers"."member_level" AS "member_level", COUNT(DISTINCT "customers"."id") AS "ctd:id:ok" '
                                 'FROM "public"."customers" "customers" GROUP BY 1', 6, obj=O_CUSTOMERS)
            elif u < 0.9:
                self.rec(t, BILLING, 'SELECT "payments"."method" AS "method", SUM("payments"."amount") AS "sum:amount:ok" '
                                     f'FROM "finance"."payments" "payments" WHERE ("payments"."paid_at" >= (DATE \'{since}\')) GROUP BY 1',
                         d.between(4, 7), obj=O_PAYMENTS)
            else:
                self.rec(t, CRM, "SELECT 1", 1)

    def _backup(self) -> None:
        d, ctx = self.d, self.ctx
        for t in self.periodic(60_000, 1_500):
            self.rec(t, CRM, "SELECT pg_is_in_recovery(), now() - pg_last_xact_replay_timestamp() AS lag", 1)
            self.rec(t + 30_000, BILLING, "SELECT pg_is_in_recovery(), now() - pg_last_xact_replay_timestamp() AS lag", 1)
            if (t // 60_000) % 2 == 0:
                self.rec(t + 15_000, LOGISTICS, "SHOW SLAVE STATUS", 1, "OTHER")
        # The nightly logical backup of every database.
        t = 2 * HOUR + d.between(0, 5) * MIN
        self.app = "pg_dump"
        for db in (CRM, BILLING):
            for sql, rows, action in (("SET statement_timeout = 0", None, "OTHER"), ("SET lock_timeout = 0", None, "OTHER"),
                                      ("SELECT pg_catalog.set_config('search_path', '', false)", 1, "SELECT"),
                                      ("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", None, "OTHER")):
                self.rec(t, db, sql, rows, action)
                t += d.between(2, 40)
            for _ in range(d.between(12, 30)):
                self.rec(t, db, "SELECT c.tableoid, c.oid, c.relname, c.relnamespace, c.relkind, c.relowner FROM pg_class c "
                                "LEFT JOIN pg_depend d ON (c.relkind = 'S' AND d.classid = c.tableoid AND d.objid = c.oid) "
                                "WHERE c.relkind IN ('r', 'S', 'v', 'c', 'm', 'f', 'p') ORDER BY c.oid", d.between(20, 300))
                t += d.between(5, 200)
            for rel in (r for r in RELATIONS.values() if r.database == db):
                cols = ", ".join(rel.columns)
                self.rec(t, db, f"COPY {rel.schema}.{rel.table} ({cols}) TO stdout;", None, "COPY", (rel.name,))
                t += int(rel.size / d.uniform(40, 80))           # rows per millisecond
            self.rec(t, db, "COMMIT", None, "OTHER")
            t += d.between(10_000, 60_000)
        self.app = "mysqldump"
        for rel in (r for r in RELATIONS.values() if r.database == LOGISTICS):
            self.rec(t, LOGISTICS, f"SHOW CREATE TABLE `{rel.table}`", 1, "OTHER")
            self.rec(t + 30, LOGISTICS, f"SELECT /*!40001 SQL_NO_CACHE */ * FROM `{rel.table}`", rel.size, "SELECT", (rel.name,))
            t += int(rel.size / d.uniform(30, 60)) + 100
        self.app = _APP["backup"]

    def _etl(self) -> None:
        d, ctx = self.d, self.ctx
        # Change-data polling of the busiest tables.
        for t in self.periodic(30_000, 3_000):
            level = CONSUMER[(t // HOUR) % 24]
            self.rec(t, CRM, "SELECT id, status, total_amount, updated_at FROM orders WHERE updated_at > $1 ORDER BY updated_at "
                             "LIMIT 1000", min(1000, int(d.expo(120 * level))), obj=O_ORDERS)
        # Hourly increments to the warehouse (personal columns stay out, except the CRM marketing feed).
        for h in range(24):
            t = h * HOUR + 5 * MIN + d.below(60_000)
            a, b = f"{ctx.iso} {h:02d}:00:00", f"{ctx.iso} {h:02d}:59:59"
            level = CONSUMER[h]
            for sql, rows, obj in (
                (f"SELECT id, city, province, member_level, points, created_at, updated_at FROM customers "
                 f"WHERE updated_at BETWEEN '{a}' AND '{b}'", int(d.expo(400 * level)), O_CUSTOMERS),
                (f"SELECT id, customer_id, store_id, channel, status, total_amount, created_at, updated_at FROM orders "
                 f"WHERE updated_at BETWEEN '{a}' AND '{b}'", int(d.expo(3000 * level)), O_ORDERS),
                (f"SELECT id, name, phone, city, member_level FROM customers WHERE updated_at BETWEEN '{a}' AND '{b}' "
                 f"AND marketing_opt_in", int(d.expo(150 * level)), O_CUSTOMERS),
            ):
                self.rec(t, CRM, sql, rows, obj=obj)
                t += d.between(200, 8000)
            self.rec(t, BILLING, f"SELECT id, order_id, amount, method, status, paid_at FROM finance.payments "
                                 f"WHERE paid_at BETWEEN '{a}' AND '{b}'", int(d.expo(1500 * level)), obj=O_PAYMENTS)
            self.rec(t + 3000, LOGISTICS, "SELECT waybill_no, status, origin_station_id, dest_station_id, receiver_city, weight_g, "
                                          f"created_at, delivered_at FROM waybills WHERE updated_at BETWEEN '{a}' AND '{b}'",
                     int(d.expo(5000 * COURIER[h] + 50)), obj=O_WAYBILLS)
        # The nightly full copy of order items, by keyset pages.
        t = HOUR + d.between(0, 20) * MIN
        last = d.between(70_000_000, 75_000_000)
        for _ in range(d.between(30, 60)):
            self.rec(t, CRM, f"SELECT id, order_id, sku_id, quantity, unit_price FROM order_items WHERE id > {last} "
                             "ORDER BY id LIMIT 50000", 50_000, obj=O_ITEMS)
            last += 50_000 + d.below(400)
            t += d.between(4_000, 20_000)


def run_service(e: Employee, ctx: DayContext, seed: int, out: list, release_day: int, rotation_day: int) -> None:
    """One service account's day of records into `out`."""
    rng = generator(seed, 6, e.index, ctx.index)
    ServiceDay(e, ctx, Dice(rng), rng, out, release_day, rotation_day).run()

"""Front-line work: customer service calls, dispatch rounds, sales follow-ups.

These people work through web applications (crm-web, waybill-console,
dispatch-app), so their statements are the applications' fixed shapes with
fresh literals; a few team leads also keep a SQL client.
"""

from __future__ import annotations

from detector.simulate import fakes
from detector.simulate.activity import Activity
from detector.simulate.clients import (
    CATEGORIES, CRM_WEB, DISPATCH_APP, EXCEPTIONS, KEYWORDS, NOTES, ODBC, WAYBILL_CONSOLE, _city, _found, client,
)
from detector.simulate.company import Employee, Persona
from detector.simulate.fakes import customer_id, order_id, order_no, phone, waybill_no
from detector.simulate.schema import (
    BILLING, CRM, LOGISTICS, O_ADDRESSES, O_COUPONS, O_COURIERS, O_CUSTOMERS, O_EXCEPTIONS,
    O_EXCEPTIONS_ONLY, O_ITEMS_PRODUCTS, O_NOTES, O_ORDERS,
    O_PAYMENTS, O_PICKUPS, O_PRODUCTS, O_PROMOS, O_REFUNDS, O_ROUTES,
    O_SCANS, O_TICKETS, O_WAYBILLS,
)


# ---------------------------------------------------------------- customer service

def _cs_profile(a: Activity, cid: int) -> None:
    a.q(CRM, "select c1_0.id,c1_0.name,c1_0.gender,c1_0.phone,c1_0.email,c1_0.province,c1_0.city,c1_0.address,"
             f"c1_0.member_level,c1_0.points,c1_0.created_at from customers c1_0 where c1_0.id={cid}", 1, obj=O_CUSTOMERS, sens=True)
    a.tick()
    a.q(CRM, "select o1_0.id,o1_0.order_no,o1_0.status,o1_0.total_amount,o1_0.created_at from orders o1_0 "
             f"where o1_0.customer_id={cid} order by o1_0.created_at desc fetch first 20 rows only",
        1 + a.d.geometric(4, 19), obj=O_ORDERS)
    a.tick()
    a.q(CRM, "select t1_0.id,t1_0.category,t1_0.status,t1_0.priority,t1_0.subject,t1_0.created_at from tickets t1_0 "
             f"where t1_0.customer_id={cid} order by t1_0.created_at desc fetch first 10 rows only",
        a.d.geometric(1.2, 10), obj=O_TICKETS)


def _cs_order(a: Activity, oid: int) -> None:
    a.q(CRM, "select o1_0.id,o1_0.order_no,o1_0.customer_id,o1_0.status,o1_0.total_amount,o1_0.pay_method,o1_0.ship_name,"
             f"o1_0.ship_phone,o1_0.ship_address,o1_0.created_at,o1_0.updated_at from orders o1_0 where o1_0.id={oid}",
        1, obj=O_ORDERS, sens=True)
    a.tick()
    a.q(CRM, "select i1_0.id,i1_0.sku_id,i1_0.quantity,i1_0.unit_price,p1_0.name from order_items i1_0 join products p1_0 "
             f"on p1_0.id=i1_0.sku_id where i1_0.order_id={oid}", a.d.between(1, 6), obj=O_ITEMS_PRODUCTS)


def _cs_waybill(a: Activity, by_order: bool) -> None:
    a.app = WAYBILL_CONSOLE
    d = a.d
    wb = waybill_no(d)
    if by_order:
        a.q(LOGISTICS, "SELECT waybill_no, status, receiver_name, receiver_phone, receiver_city, courier_id, updated_at "
                       f"FROM waybills WHERE order_no = '{order_no(d, a.day)}'", _found(a), obj=O_WAYBILLS, sens=True)
    else:
        a.q(LOGISTICS, "SELECT waybill_no, order_no, status, sender_name, receiver_name, receiver_phone, receiver_address, "
                       f"courier_id, dest_station_id, updated_at FROM waybills WHERE waybill_no = '{wb}'",
            _found(a), obj=O_WAYBILLS, sens=True)
    a.tick()
    a.q(LOGISTICS, f"SELECT scan_type, station_id, scanned_at FROM scan_events WHERE waybill_no = '{wb}' ORDER BY scanned_at",
        d.between(2, 14), obj=O_SCANS)
    if d.chance(0.15):
        a.wait(5, 40)
        a.q(LOGISTICS, f"SELECT name, phone FROM couriers WHERE courier_id = {fakes.courier_id(d)}", 1, obj=O_COURIERS, sens=True)
    if d.chance(0.1):
        a.wait(20, 120)
        a.q(LOGISTICS, "INSERT INTO delivery_exceptions (waybill_no, reason, status, handler, created_at) VALUES "
                       f"('{wb}', '{d.pick(EXCEPTIONS)}', 'OPEN', '{a.account}', NOW())", 1, "INSERT", O_EXCEPTIONS_ONLY)
    a.app = CRM_WEB


def _cs_ticket(a: Activity, cid: int, oid: int, ph: str) -> None:
    d = a.d
    tid = fakes.ticket_id(d)
    a.q(CRM, "insert into tickets (assignee,category,channel,contact_phone,customer_id,order_id,priority,status,subject,"
             f"created_at,id) values ('{a.account}','{d.pick(CATEGORIES)}','phone','{ph}',{cid},{oid},{d.between(1, 3)},"
             f"'open','{d.pick(NOTES)[:8]}',now(),{tid})", 1, "INSERT", O_TICKETS)
    a.tick()
    a.q(CRM, f"insert into ticket_notes (author,body,ticket_id,created_at,id) values ('{a.account}','{d.pick(NOTES)}',"
             f"{tid},now(),{tid * 3 + d.below(3)})", 1, "INSERT", O_NOTES)
    if d.chance(0.3):
        a.wait(30, 240)
        a.q(CRM, f"update tickets set status='resolved',updated_at=now() where id={tid}", 1, "UPDATE", O_TICKETS)


def cs_phone_call(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    a.app = CRM_WEB
    ph = phone(d)
    n = _found(a)
    a.q(CRM, "select c1_0.id,c1_0.name,c1_0.phone,c1_0.member_level,c1_0.city from customers c1_0 "
             f"where c1_0.phone='{ph}'", n, obj=O_CUSTOMERS, sens=True)
    if n == 0:
        return
    a.wait(2, 12)
    cid = customer_id(d)
    _cs_profile(a, cid)
    oid = order_id(d, a.day)
    if d.chance(0.55):
        a.wait(5, 40)
        _cs_order(a, oid)
    if d.chance(0.4):
        a.wait(5, 30)
        _cs_waybill(a, by_order=True)
    if d.chance(0.1):
        a.wait(10, 60)
        a.q(BILLING, "select p1_0.id,p1_0.status,p1_0.amount,p1_0.method,p1_0.paid_at from finance.payments p1_0 "
                     f"where p1_0.order_id={oid}", 1, obj=O_PAYMENTS)
        if d.chance(0.5):
            a.wait(20, 90)
            a.q(BILLING, "insert into finance.refunds (amount,order_id,payment_id,reason,status,created_at) values "
                         f"({d.between(9, 900)}.{d.below(100):02d},{oid},{fakes.payment_id(d)},'{d.pick(CATEGORIES)}',"
                         "'PENDING',now())", 1, "INSERT", O_REFUNDS)
    if d.chance(0.07):
        a.wait(20, 90)
        a.q(CRM, f"update orders set ship_address='{fakes.address(d)}',updated_at=now() where id={oid}", 1, "UPDATE", O_ORDERS)
    if d.chance(0.35):
        a.wait(30, 180)
        _cs_ticket(a, cid, oid, ph)


def cs_waybill_call(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    _cs_waybill(a, by_order=False)
    if d.chance(0.5):
        a.wait(5, 30)
        a.q(CRM, "select c1_0.id,c1_0.name,c1_0.phone,c1_0.member_level,c1_0.city from customers c1_0 "
                 f"where c1_0.phone='{phone(d)}'", _found(a), obj=O_CUSTOMERS, sens=True)
    if d.chance(0.12):
        a.app = WAYBILL_CONSOLE
        a.wait(20, 90)
        a.q(LOGISTICS, f"UPDATE waybills SET receiver_address = '{fakes.address(d)}', updated_at = NOW() "
                       f"WHERE waybill_no = '{waybill_no(d)}'", 1, "UPDATE", O_WAYBILLS)
        a.app = CRM_WEB
    if d.chance(0.3):
        a.wait(30, 150)
        _cs_ticket(a, customer_id(d), order_id(d, a.day), phone(d))


def cs_order_call(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    a.app = CRM_WEB
    a.q(CRM, "select o1_0.id,o1_0.order_no,o1_0.customer_id,o1_0.status,o1_0.total_amount,o1_0.ship_name,o1_0.ship_phone,"
             f"o1_0.created_at from orders o1_0 where o1_0.order_no='{order_no(d, a.day)}'", _found(a), obj=O_ORDERS, sens=True)
    a.wait(3, 20)
    _cs_order(a, order_id(d, a.day))
    if d.chance(0.35):
        a.wait(5, 30)
        a.q(BILLING, "select p1_0.id,p1_0.status,p1_0.amount,p1_0.method,p1_0.paid_at from finance.payments p1_0 "
                     f"where p1_0.order_id={order_id(d, a.day)}", 1, obj=O_PAYMENTS)


def cs_name_search(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    a.app = CRM_WEB
    city = _city(a, p)
    n = d.geometric(5, 20)
    a.q(CRM, "select c1_0.id,c1_0.name,c1_0.phone,c1_0.city,c1_0.member_level from customers c1_0 "
             f"where c1_0.name like '{fakes.surname(d)}{d.pick(fakes.GIVEN)[0][:1]}%' and c1_0.city='{city.name}' "
             "fetch first 20 rows only", n, obj=O_CUSTOMERS, sens=True)
    if n:
        a.wait(5, 30)
        _cs_profile(a, customer_id(d))


def cs_ticket_queue(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    a.app = CRM_WEB
    a.q(CRM, "select t1_0.id,t1_0.customer_id,t1_0.category,t1_0.status,t1_0.priority,t1_0.subject,t1_0.created_at "
             f"from tickets t1_0 where t1_0.assignee='{a.account}' and t1_0.status in ('open','pending') "
             "order by t1_0.priority,t1_0.created_at fetch first 50 rows only", d.geometric(8, 50), obj=O_TICKETS)
    for _ in range(d.between(0, 3)):
        a.wait(5, 60)
        tid = fakes.ticket_id(d)
        a.q(CRM, "select t1_0.id,t1_0.customer_id,t1_0.order_id,t1_0.category,t1_0.status,t1_0.contact_phone,t1_0.subject,"
                 f"t1_0.created_at from tickets t1_0 where t1_0.id={tid}", 1, obj=O_TICKETS, sens=True)
        a.tick()
        a.q(CRM, f"select n1_0.id,n1_0.author,n1_0.body,n1_0.created_at from ticket_notes n1_0 where n1_0.ticket_id={tid} "
                 "order by n1_0.created_at", d.between(1, 6), obj=O_NOTES)
        if d.chance(0.4):
            a.wait(20, 120)
            a.q(CRM, f"update tickets set status='{d.pick(('pending', 'resolved'))}',updated_at=now() where id={tid}",
                1, "UPDATE", O_TICKETS)


def cs_verify_identity(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    a.app = CRM_WEB
    a.q(CRM, f"select c1_0.id,c1_0.name,c1_0.id_card_no from customers c1_0 where c1_0.id={customer_id(d)}",
        1, obj=O_CUSTOMERS, sens=True, cat="I")
    if d.chance(0.5):
        a.wait(5, 30)
        a.q(CRM, f"update customers set remark='已实名核验',updated_at=now() where id={customer_id(d)}", 1, "UPDATE", O_CUSTOMERS)


def cs_team_report(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    client(a, p, CRM)
    a.q(CRM, "SELECT assignee, status, count(*) FROM tickets WHERE created_at >= '" + a.ago(d.between(0, 7)) +
        "' GROUP BY assignee, status ORDER BY assignee", d.between(20, 90), obj=O_TICKETS)
    if d.chance(0.5):
        a.wait(20, 200)
        a.q(CRM, "SELECT category, count(*), avg(extract(epoch FROM updated_at - created_at) / 3600) AS hours FROM tickets "
                 f"WHERE status = 'resolved' AND updated_at >= '{a.ago(7)}' GROUP BY category", 7, obj=O_TICKETS)
    a.app = CRM_WEB


# ---------------------------------------------------------------- dispatch

def _st(a: Activity, p: Persona) -> int:
    return a.d.pick(p.stations) if a.d.u() < 0.93 else a.d.between(101, 998)


def dispatch_station_list(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    a.app = DISPATCH_APP
    st = _st(a, p)
    page = p.page
    n = min(page, int(page * d.uniform(0.1, 1.0)) + 1)
    a.q(LOGISTICS, "SELECT waybill_no, receiver_name, receiver_phone, receiver_address, weight_g, priority, status "
                   f"FROM waybills WHERE dest_station_id = {st} AND status IN ('ARRIVED', 'OUT_FOR_DELIVERY') "
                   f"AND created_at >= '{a.ago(3)}' ORDER BY priority DESC, created_at LIMIT {page}", n, obj=O_WAYBILLS, sens=True)


def dispatch_assign(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    a.app = DISPATCH_APP
    st = _st(a, p)
    k = d.between(1, 15)
    nos = [waybill_no(d) for _ in range(k)]
    in_list = ", ".join(f"'{w}'" for w in nos)
    a.q(LOGISTICS, f"UPDATE waybills SET courier_id = {fakes.courier_id(d)}, status = 'OUT_FOR_DELIVERY', updated_at = NOW() "
                   f"WHERE waybill_no IN ({in_list})", k, "UPDATE", O_WAYBILLS)
    a.tick()
    values = ", ".join(f"('{w}', {st}, 'DISPATCH', {d.between(5000, 9000)}, NOW())" for w in nos)
    a.q(LOGISTICS, f"INSERT INTO scan_events (waybill_no, station_id, scan_type, operator_id, scanned_at) VALUES {values}",
        k, "INSERT", O_SCANS)


def dispatch_couriers(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    a.app = DISPATCH_APP
    a.q(LOGISTICS, "SELECT courier_id, name, phone, vehicle_plate, status FROM couriers "
                   f"WHERE station_id = {_st(a, p)} AND status = 'ON_DUTY'", d.between(4, 40), obj=O_COURIERS, sens=True)


def dispatch_lookup(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    a.app = DISPATCH_APP
    wb = waybill_no(d)
    a.q(LOGISTICS, f"SELECT * FROM waybills WHERE waybill_no = '{wb}'", _found(a), obj=O_WAYBILLS, sens=True)
    a.tick()
    a.q(LOGISTICS, f"SELECT scan_type, station_id, operator_id, scanned_at FROM scan_events WHERE waybill_no = '{wb}' "
                   "ORDER BY scanned_at", d.between(2, 14), obj=O_SCANS)
    if d.chance(0.2):
        a.wait(10, 60)
        a.q(LOGISTICS, f"UPDATE waybills SET priority = {d.between(1, 3)}, updated_at = NOW() WHERE waybill_no = '{wb}'",
            1, "UPDATE", O_WAYBILLS)


def dispatch_pickups(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    a.app = DISPATCH_APP
    city = _city(a, p)
    a.q(LOGISTICS, "SELECT id, contact_name, contact_phone, pickup_address, window_start, window_end FROM pickup_requests "
                   f"WHERE city = '{city.short}' AND status = 'PENDING' AND window_start < '{a.stamp()}' "
                   "ORDER BY window_start LIMIT 100", d.between(3, 100), obj=O_PICKUPS, sens=True)
    for _ in range(d.between(0, 4)):
        a.wait(5, 40)
        a.q(LOGISTICS, f"UPDATE pickup_requests SET courier_id = {fakes.courier_id(d)}, status = 'ASSIGNED' "
                       f"WHERE id = {d.between(1, 2_300_000)}", 1, "UPDATE", O_PICKUPS)


def dispatch_stats(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    a.app = DISPATCH_APP
    a.q(LOGISTICS, f"SELECT status, COUNT(*) FROM waybills WHERE dest_station_id = {_st(a, p)} AND created_at >= "
                   f"'{a.ago(d.between(0, 1))}' GROUP BY status", d.between(3, 8), obj=O_WAYBILLS)
    if d.chance(0.4):
        a.tick()
        a.q(LOGISTICS, f"SELECT route_id, dest_station_id, eta_hours FROM routes WHERE origin_station_id = {_st(a, p)}",
            d.between(3, 25), obj=O_ROUTES)


def dispatch_exceptions(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    a.app = DISPATCH_APP
    a.q(LOGISTICS, "SELECT e.id, e.waybill_no, e.reason, w.receiver_name, w.receiver_phone FROM delivery_exceptions e "
                   f"JOIN waybills w ON w.waybill_no = e.waybill_no WHERE e.status = 'OPEN' AND w.dest_station_id = {_st(a, p)}",
        d.geometric(6, 40), obj=O_EXCEPTIONS, sens=True)
    for _ in range(d.between(0, 3)):
        a.wait(10, 90)
        a.q(LOGISTICS, f"UPDATE delivery_exceptions SET status = 'HANDLED', handler = '{a.account}' "
                       f"WHERE id = {d.between(1, 400_000)}", 1, "UPDATE", O_EXCEPTIONS_ONLY)


def dispatch_sql(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    client(a, p, LOGISTICS)
    a.q(LOGISTICS, f"SELECT courier_id, COUNT(*) AS delivered FROM waybills WHERE dest_station_id = {_st(a, p)} "
                   f"AND delivered_at >= '{a.ago(0)}' GROUP BY courier_id ORDER BY delivered DESC", d.between(5, 40), obj=O_WAYBILLS)


# ---------------------------------------------------------------- sales

def sales_client_list(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    a.app = CRM_WEB
    city = _city(a, p)
    page = min(p.page, 100)
    level = d.between(2, 4)
    for k in range(1 if d.u() < 0.7 else d.between(2, 3)):
        a.q(CRM, "select c1_0.id,c1_0.name,c1_0.phone,c1_0.city,c1_0.member_level,c1_0.points,c1_0.last_order_at "
                 f"from customers c1_0 where c1_0.city='{city.name}' and c1_0.member_level>={level} "
                 f"order by c1_0.last_order_at desc offset {k * page} rows fetch first {page} rows only",
            page if d.u() < 0.8 else d.between(0, page), obj=O_CUSTOMERS, sens=True)
        a.wait(10, 90)


def sales_client_view(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    a.app = CRM_WEB
    cid = customer_id(d)
    _cs_profile(a, cid)
    if d.chance(0.5):
        a.tick()
        a.q(CRM, "select c1_0.id,c1_0.code,c1_0.status,c1_0.used_at,p1_0.name from coupons c1_0 join promotions p1_0 "
                 f"on p1_0.id=c1_0.promotion_id where c1_0.customer_id={cid}", d.geometric(2, 12), obj=O_COUPONS)
    if d.chance(0.15):
        a.wait(10, 60)
        a.q(CRM, "select a1_0.id,a1_0.receiver_name,a1_0.receiver_phone,a1_0.city,a1_0.detail_address from customer_addresses a1_0 "
                 f"where a1_0.customer_id={cid}", d.between(1, 4), obj=O_ADDRESSES, sens=True)


def sales_store_report(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    a.app = CRM_WEB
    store = p.stations[0] % 350 + 1
    days = d.pick((7, 14, 30))
    a.q(CRM, "select date_trunc('day',o1_0.created_at),count(o1_0.id),sum(o1_0.total_amount) from orders o1_0 "
             f"where o1_0.store_id={store} and o1_0.created_at>='{a.ago(days)}' group by 1 order by 1", days, obj=O_ORDERS)
    if d.chance(0.5):
        a.tick()
        a.q(CRM, "select p1_0.id,p1_0.name,sum(i1_0.quantity) from order_items i1_0 join products p1_0 on p1_0.id=i1_0.sku_id "
                 f"join orders o1_0 on o1_0.id=i1_0.order_id where o1_0.store_id={store} and o1_0.created_at>='{a.ago(days)}' "
                 "group by p1_0.id,p1_0.name order by 3 desc fetch first 20 rows only", 20, obj=O_ITEMS_PRODUCTS)


def sales_promotions(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    a.app = CRM_WEB
    a.q(CRM, "select p1_0.id,p1_0.name,p1_0.starts_at,p1_0.ends_at,p1_0.discount_rule from promotions p1_0 "
             "where p1_0.status='active' and p1_0.ends_at>now()", d.between(3, 25), obj=O_PROMOS)
    for _ in range(d.between(0, 3)):
        a.wait(10, 60)
        a.q(CRM, "insert into coupons (customer_id,promotion_id,code,status) values "
                 f"({customer_id(d)},{d.between(1, 1200)},'CP{d.below(10**10):010d}','issued')", 1, "INSERT", O_COUPONS)


def sales_products(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    a.app = CRM_WEB
    a.q(CRM, "select p1_0.id,p1_0.sku,p1_0.name,p1_0.price,i1_0.on_hand from products p1_0 left join inventory i1_0 "
             f"on i1_0.sku_id=p1_0.id where p1_0.name like '%{d.pick(KEYWORDS)}%' fetch first 50 rows only",
        d.between(0, 50), obj=O_PRODUCTS)


def sales_remark(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    a.app = CRM_WEB
    cid = customer_id(d)
    _cs_profile(a, cid)
    a.wait(30, 200)
    a.q(CRM, f"update customers set remark='{d.pick(('意向强', '已回访', '需跟进', '大客户', '节前联系'))}',updated_at=now() "
             f"where id={cid}", 1, "UPDATE", O_CUSTOMERS)


def sales_excel(a: Activity, p: Persona, e: Employee) -> None:
    d = a.d
    a.app = ODBC
    city = _city(a, p)
    a.q(CRM, "SELECT c.name, c.phone, c.city, c.member_level, c.points FROM public.customers c "
             f"WHERE c.city = '{city.name}' AND c.member_level >= 4 ORDER BY c.points DESC LIMIT 300",
        d.between(60, 300), obj=O_CUSTOMERS, sens=True)


def sales_export_clients(a: Activity, p: Persona, e: Employee) -> None:
    """A legitimate export of one's own client list (quarterly planning, handover)."""
    d = a.d
    a.app = CRM_WEB
    cities = "','".join(c.name for c in p.cities)
    a.q(CRM, "select c1_0.name,c1_0.phone,c1_0.city,c1_0.last_order_at,c1_0.points from customers c1_0 "
             f"where c1_0.city in ('{cities}') and c1_0.member_level>=3 order by c1_0.points desc fetch first 500 rows only",
        d.between(200, 500), obj=O_CUSTOMERS, sens=True)

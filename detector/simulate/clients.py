"""The programs people query with, and small helpers every role's tasks share.

Applications report themselves the way the real ones do: DBeaver names the
script tab, pgAdmin the database, Navicat nothing at all; web applications and
scheduled tools have fixed names.
"""

from __future__ import annotations

from collections.abc import Callable

from detector.simulate import fakes
from detector.simulate.activity import Activity
from detector.simulate.company import Employee, Persona
from detector.simulate.schema import LOGISTICS

Task = Callable[[Activity, Persona, Employee], None]

CRM_WEB, WAYBILL_CONSOLE, DISPATCH_APP, FINANCE_PORTAL = "crm-web", "waybill-console", "dispatch-app", "finance-portal"
TABLEAU, ODBC = "Tableau 2024.2", "psqlODBC"
NOTES = ("客户来电催件，已联系站点加急派送", "客户要求修改收货地址，已核实身份", "商品破损，已登记退货", "客户咨询退款进度，已告知3个工作日内到账",
         "客户投诉快递员态度，已转站点主管", "发票抬头错误，已重新开具", "客户要求延迟派送", "会员积分未到账，已提交技术排查",
         "客户反映重复扣款，已转财务核实", "已回访，客户满意")
CATEGORIES = ("delivery_delay", "refund", "address_change", "damaged", "complaint", "invoice", "account")
KEYWORDS = ("月饼", "大闸蟹", "茅台", "手机", "空调", "纸巾", "牛奶", "坚果", "洗衣液", "咖啡", "电饭煲", "运动鞋")
EXCEPTIONS = ("ADDRESS_UNKNOWN", "RECEIVER_ABSENT", "DAMAGED", "REFUSED", "WEATHER_DELAY")
STATUSES = ("ARRIVED", "OUT_FOR_DELIVERY")


def client(a: Activity, p: Persona, db: str, kind: str = "editor") -> None:
    """Sets the application name the person's SQL client reports."""
    base = p.sql_app or "DBeaver 24.1.5"
    if base.startswith("DBeaver"):
        if kind == "editor":
            a.app = f"{base} - SQLEditor <Script-{p.script + (a.day.toordinal() // 4) % 25}.sql>"
        else:
            a.app = f"{base} - {'Main' if kind == 'main' else 'Metadata'}"
    elif base.startswith("Navicat"):
        a.app = None                                   # Navicat leaves application_name empty
    elif base == "pgAdmin 4":
        a.app = "mysql" if db == LOGISTICS else f"pgAdmin 4 - DB:{db}"
    elif base == "psql" and db == LOGISTICS:
        a.app = "mysql"
    else:
        a.app = base


def _city(a: Activity, p: Persona) -> fakes.City:
    return a.d.pick(p.cities) if a.d.u() < 0.85 else a.d.pick(fakes.CITIES)


def _found(a: Activity) -> int:
    u = a.d.u()
    return 1 if u < 0.9 else (0 if u < 0.97 else 2)

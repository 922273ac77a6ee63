"""A small, realistic CRM workload run against the private servers of tests/databases.py.

Database `crm` with `customers` (id, name, phone, id_card_no, address, bank_card; 5,000
generated rows, no real person's data) and the non-sensitive `orders`. Then, in order:

1. setup by the administrator (`postgres` / `root`): tables, data, accounts, grants;
2. the clerks `clerk_li`, `clerk_wang`, `clerk_zhao`, each in one session of their desktop
   client: a few dozen point lookups `SELECT name, phone FROM customers WHERE id = N`
   and a few order look-ups;
3. the shared application account `app_portal`, one session per end user, whose
   application name carries the person: `portal user=clerk_li`, `portal user=clerk_wang`;
4. one failed login: `clerk_chen` with a wrong password;
5. the insider `clerk_chen`: a few ordinary look-ups, then one bulk pull of every row,
   `SELECT id, name, phone, id_card_no, bank_card FROM customers`, from a SQL editor;
6. an export by the insider: PostgreSQL `COPY customers TO STDOUT` (pgaudit logs rows 0
   for it), MariaDB `SELECT ... INTO OUTFILE` into the server's secure_file_priv directory.

`run_postgres_workload` / `run_mariadb_workload` return a `Workload`: every statement with
who ran it, under which application, for which end user, and the rows it returned (checked
against what the client actually received), plus the failed logins and the generated rows.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from tests.databases import PrivateMariaDB, PrivatePostgres

DATABASE = "crm"
SEED = 20261128
CUSTOMERS = 5000
ORDERS = 8000

CLERKS = {"clerk_li": 36, "clerk_wang": 30, "clerk_zhao": 24}  # role -> customer look-ups
ORDER_LOOKUPS = 4                                               # per clerk
INSIDER = "clerk_chen"
INSIDER_LOOKUPS = 10
PORTAL = "app_portal"
PORTAL_USERS = {"clerk_li": 8, "clerk_wang": 6}                 # end user -> look-ups through the portal
CLERK_APP = "crm-desk 4.2"
INSIDER_TOOL = "DBeaver 23.2.0 - SQLEditor <Script-1.sql>"

LOOKUP_SQL = "SELECT name, phone FROM customers WHERE id = {id}"
ORDER_SQL = "SELECT id, item, amount, status FROM orders WHERE customer_id = {id} ORDER BY id"
PORTAL_SQL = "SELECT name, phone, address FROM customers WHERE id = {id}"
BULK_SQL = "SELECT id, name, phone, id_card_no, bank_card FROM customers"
PG_EXPORT_SQL = "COPY customers TO STDOUT WITH (FORMAT csv)"
MARIADB_EXPORT_SQL = ("SELECT id, name, phone, id_card_no, address, bank_card FROM customers "
                      "INTO OUTFILE '{path}' FIELDS TERMINATED BY ','")

# --------------------------------------------------------------------------- data

_SURNAMES = ["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou",
             "Xu", "Sun", "Ma", "Zhu", "Hu", "Guo", "He", "Lin", "Gao", "Luo"]
_GIVEN = ["Wei", "Fang", "Na", "Min", "Jing", "Li", "Qiang", "Lei", "Jun", "Yang",
          "Yong", "Yan", "Jie", "Tao", "Ming", "Chao", "Xiu", "Hua", "Ping", "Gang"]
_REGIONS = ["110101", "110105", "310104", "310115", "440305", "440106", "330106", "510107", "420106", "320102"]
_CITIES = ["Beijing", "Shanghai", "Shenzhen", "Guangzhou", "Hangzhou", "Chengdu", "Wuhan", "Nanjing"]
_ROADS = ["Renmin", "Jiefang", "Zhongshan", "Heping", "Jianshe", "Xinhua", "Changjiang", "Huanghe"]
_DISTRICTS = ["Dongcheng", "Xuhui", "Nanshan", "Tianhe", "Xihu", "Jinjiang", "Wuchang", "Xuanwu"]
_ITEMS = ["phone case", "charger", "SIM plan", "router", "headphones", "tablet", "smart watch", "cable"]
_STATUSES = ["paid", "shipped", "delivered", "returned"]


@dataclass(frozen=True)
class Customer:
    id: int
    name: str
    phone: str
    id_card_no: str
    address: str
    bank_card: str


@dataclass(frozen=True)
class Order:
    id: int
    customer_id: int
    item: str
    amount: str
    status: str
    created_at: str


def _id_card_check(body: str) -> str:
    """GB 11643 check character (ISO 7064 MOD 11-2) of a 17-digit ID body."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


def _luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def fake_customers(n: int = CUSTOMERS, seed: int = SEED) -> list[Customer]:
    """`n` generated customers in the shapes of Chinese personal data (checksums valid, people invented)."""
    rng = random.Random(seed)
    rows = []
    for i in range(1, n + 1):
        given = "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2))))
        birth = date(1955, 1, 1) + timedelta(days=rng.randrange(50 * 365))
        body = f"{rng.choice(_REGIONS)}{birth:%Y%m%d}{rng.randrange(1000):03d}"
        card = "6222" + "".join(str(rng.randrange(10)) for _ in range(11))
        rows.append(Customer(
            id=i, name=f"{rng.choice(_SURNAMES)} {given}",
            phone="1" + rng.choice("3578") + "".join(str(rng.randrange(10)) for _ in range(9)),
            id_card_no=body + _id_card_check(body),
            address=f"{rng.randint(1, 999)} {rng.choice(_ROADS)} Road, {rng.choice(_DISTRICTS)} District, "
                    f"{rng.choice(_CITIES)}",
            bank_card=card + _luhn_digit(card)))
    return rows


def fake_orders(customers: int = CUSTOMERS, n: int = ORDERS, seed: int = SEED) -> list[Order]:
    rng = random.Random(seed + 1)
    return [Order(id=i, customer_id=rng.randint(1, customers), item=rng.choice(_ITEMS),
                  amount=f"{rng.randint(500, 500000) / 100:.2f}", status=rng.choice(_STATUSES),
                  created_at=(date(2026, 1, 1) + timedelta(days=rng.randrange(330))).isoformat())
            for i in range(1, n + 1)]


def _write_csv(path: Path, rows: list[Customer] | list[Order]) -> Path:
    with open(path, "w", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        for row in rows:
            writer.writerow(list(vars(row).values()))
    return path


# --------------------------------------------------------------------------- what was done

@dataclass(frozen=True)
class Statement:
    """One workload statement as the client ran it (the application marker SET is not counted)."""
    role: str                     # the database account
    application: str              # application_name (PostgreSQL) / @exfil_application (MariaDB)
    end_user: str                 # the person behind it: the role, or the portal's end user
    kind: str                     # lookup | order_lookup | portal_lookup | bulk_pull | export
    sql: str
    rows: int                     # rows returned or exported
    customer_ids: tuple[int, ...] = ()  # customers whose personal data it read


@dataclass(frozen=True)
class FailedLogin:
    role: str
    application: str
    client: str = "127.0.0.1"


@dataclass
class Workload:
    engine: str                   # "postgresql" | "mariadb"
    database: str
    customers: list[Customer]
    orders: list[Order]
    statements: list[Statement] = field(default_factory=list)
    failed_logins: list[FailedLogin] = field(default_factory=list)
    export_file: Path | None = None   # MariaDB INTO OUTFILE target

    insider = INSIDER
    clerks = tuple(CLERKS)
    portal = PORTAL

    def select(self, role: str | None = None, kind: str | None = None, application: str | None = None,
               end_user: str | None = None) -> list[Statement]:
        return [s for s in self.statements
                if (role is None or s.role == role) and (kind is None or s.kind == kind)
                and (application is None or s.application == application)
                and (end_user is None or s.end_user == end_user)]

    def count(self, **criteria: str) -> int:
        return len(self.select(**criteria))

    @property
    def bulk_pull(self) -> Statement:
        (stmt,) = self.select(kind="bulk_pull")
        return stmt

    @property
    def export(self) -> Statement:
        (stmt,) = self.select(kind="export")
        return stmt

    def per_role(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for s in self.statements:
            counts[s.role] = counts.get(s.role, 0) + 1
        return counts


class _Plan:
    """Builds the sessions of the workload (identical for both engines) from one seeded RNG."""

    def __init__(self, customers: list[Customer], orders: list[Order], seed: int) -> None:
        self.rng = random.Random(seed + 2)
        self.n = len(customers)
        self.orders_of: dict[int, int] = {}
        for o in orders:
            self.orders_of[o.customer_id] = self.orders_of.get(o.customer_id, 0) + 1

    def lookups(self, role: str, app: str, count: int, end_user: str | None = None,
                sql: str = LOOKUP_SQL, kind: str = "lookup") -> list[Statement]:
        ids = [self.rng.randint(1, self.n) for _ in range(count)]
        return [Statement(role, app, end_user or role, kind, sql.format(id=i), 1, (i,)) for i in ids]

    def order_lookups(self, role: str, app: str, count: int) -> list[Statement]:
        ids = [self.rng.randint(1, self.n) for _ in range(count)]
        return [Statement(role, app, role, "order_lookup", ORDER_SQL.format(id=i), self.orders_of.get(i, 0))
                for i in ids]


def _script(statements: list[Statement]) -> str:
    return "".join(f"{s.sql};\n" for s in statements)


def _run_session(server: PrivatePostgres | PrivateMariaDB, statements: list[Statement], database: str,
                 workload: Workload) -> None:
    """One connection running `statements`; checks the client got the rows the plan expects."""
    first = statements[0]
    done = server.run_sql(first.role, _script(statements), application=first.application, database=database)
    received = len(done.stdout.splitlines())
    expected = sum(s.rows for s in statements if "INTO OUTFILE" not in s.sql)  # that one writes a file
    if received != expected:
        raise AssertionError(f"{first.role} ({first.application}) received {received} rows, expected {expected}")
    workload.statements.extend(statements)


def _sessions(plan: _Plan, customers: list[Customer], export_sql: str) -> list[list[Statement]]:
    all_ids = tuple(c.id for c in customers)
    sessions = []
    for clerk, count in CLERKS.items():
        stmts = plan.lookups(clerk, CLERK_APP, count)
        stmts[5:5] = plan.order_lookups(clerk, CLERK_APP, ORDER_LOOKUPS)
        sessions.append(stmts)
    for user, count in PORTAL_USERS.items():
        sessions.append(plan.lookups(PORTAL, f"portal user={user}", count, end_user=user, sql=PORTAL_SQL,
                                     kind="portal_lookup"))
    insider = plan.lookups(INSIDER, INSIDER_TOOL, INSIDER_LOOKUPS)
    insider.append(Statement(INSIDER, INSIDER_TOOL, INSIDER, "bulk_pull", BULK_SQL, len(customers), all_ids))
    sessions.append(insider)
    export_app = "psql" if export_sql.startswith("COPY") else "mariadb"
    sessions.append([Statement(INSIDER, export_app, INSIDER, "export", export_sql, len(customers), all_ids)])
    return sessions


ACCOUNTS = (*CLERKS, INSIDER, PORTAL)


# --------------------------------------------------------------------------- PostgreSQL

PG_SCHEMA = """\
CREATE EXTENSION IF NOT EXISTS pgaudit;
CREATE TABLE customers (
  id          integer PRIMARY KEY,
  name        text NOT NULL,
  phone       text,
  id_card_no  text,
  address     text,
  bank_card   text
);
CREATE TABLE orders (
  id           integer PRIMARY KEY,
  customer_id  integer NOT NULL,  -- no FOREIGN KEY: its per-row checks would add 8,000 audit lines
  item         text NOT NULL,
  amount       numeric(10, 2) NOT NULL,
  status       text NOT NULL,
  created_at   date NOT NULL
);
CREATE INDEX orders_customer_id ON orders (customer_id);
"""


def run_postgres_workload(server: PrivatePostgres, database: str = DATABASE, seed: int = SEED,
                          customers: int = CUSTOMERS) -> Workload:
    """Create `database` on `server` and run the workload in it; roles are created once per server."""
    rows, orders = fake_customers(customers, seed), fake_orders(customers, ORDERS, seed)
    work = Workload("postgresql", database, rows, orders)
    assert server.root is not None
    customers_csv = _write_csv(server.root / f"{database}-customers.csv", rows)
    orders_csv = _write_csv(server.root / f"{database}-orders.csv", orders)
    server.run_sql(None, f"CREATE DATABASE {database};")
    server.run_sql(None, PG_SCHEMA
                   + f"\\copy customers FROM '{customers_csv}' WITH (FORMAT csv)\n"
                   + f"\\copy orders FROM '{orders_csv}' WITH (FORMAT csv)\n"
                   + "ANALYZE customers;\nANALYZE orders;\n", database=database)
    for account in ACCOUNTS:
        if account not in server.passwords:
            server.create_role(account)
    server.run_sql(None, f"GRANT SELECT ON customers, orders TO {', '.join(ACCOUNTS)};", database=database)

    sessions = _sessions(_Plan(rows, orders, seed), rows, PG_EXPORT_SQL)
    for stmts in sessions[:-2]:
        _run_session(server, stmts, database, work)
    _failed_login(server, work, database)
    for stmts in sessions[-2:]:
        _run_session(server, stmts, database, work)
    return work


# --------------------------------------------------------------------------- MariaDB

MARIADB_SCHEMA = """\
CREATE TABLE customers (
  id INT PRIMARY KEY, name VARCHAR(100) NOT NULL, phone VARCHAR(32),
  id_card_no VARCHAR(32), address VARCHAR(200), bank_card VARCHAR(32));
CREATE TABLE orders (
  id INT PRIMARY KEY, customer_id INT NOT NULL, item VARCHAR(100) NOT NULL,
  amount DECIMAL(10,2) NOT NULL, status VARCHAR(20) NOT NULL, created_at DATE NOT NULL,
  KEY orders_customer_id (customer_id));
"""


def run_mariadb_workload(server: PrivateMariaDB, database: str = DATABASE, seed: int = SEED,
                         customers: int = CUSTOMERS) -> Workload:
    """Create `database` on `server` and run the workload in it; users are created once per server."""
    rows, orders = fake_customers(customers, seed), fake_orders(customers, ORDERS, seed)
    work = Workload("mariadb", database, rows, orders)
    assert server.root is not None
    customers_csv = _write_csv(server.root / f"{database}-customers.csv", rows)
    orders_csv = _write_csv(server.root / f"{database}-orders.csv", orders)
    load = ("LOAD DATA LOCAL INFILE '{path}' INTO TABLE {table} "
            "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' LINES TERMINATED BY '\\n';\n")
    server.run_sql(None, f"CREATE DATABASE {database};\nUSE {database};\n" + MARIADB_SCHEMA
                   + load.format(path=customers_csv, table="customers")
                   + load.format(path=orders_csv, table="orders")
                   + "ANALYZE TABLE customers, orders;\n", local_infile=True)
    for account in ACCOUNTS:
        if account not in server.passwords:
            server.create_user(account)
    grants = "".join(f"GRANT SELECT ON {database}.customers TO '{a}'@'%';\n"
                     f"GRANT SELECT ON {database}.orders TO '{a}'@'%';\n" for a in ACCOUNTS)
    server.run_sql(None, grants + f"GRANT FILE ON *.* TO '{INSIDER}'@'%';\n")

    work.export_file = server.outfile_dir / f"{database}_{INSIDER}_customers.csv"
    sessions = _sessions(_Plan(rows, orders, seed), rows, MARIADB_EXPORT_SQL.format(path=work.export_file))
    for stmts in sessions[:-2]:
        _run_session(server, stmts, database, work)
    _failed_login(server, work, database)
    for stmts in sessions[-2:]:
        _run_session(server, stmts, database, work)
    exported = len(work.export_file.read_text().splitlines())
    if exported != len(rows):
        raise AssertionError(f"INTO OUTFILE wrote {exported} rows, expected {len(rows)}")
    return work


def _failed_login(server: PrivatePostgres | PrivateMariaDB, work: Workload, database: str) -> None:
    done = server.run_sql(INSIDER, "SELECT 1;", application=INSIDER_TOOL, database=database,
                          password="not-the-password", check=False)
    if done.returncode == 0:
        raise AssertionError(f"a wrong password for {INSIDER} was accepted")
    work.failed_logins.append(FailedLogin(INSIDER, INSIDER_TOOL))

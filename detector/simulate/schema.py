"""The company's databases, their relations, and the sensitivity catalog.

Relation naming (what the catalog keys and the events' `objects` use) is always
`database.schema.table`:

* PostgreSQL-like `crm` and `billing` (audited by pgaudit): the real schema, e.g.
  `crm.public.customers`, `crm.staging.customers_masked`, `billing.finance.payments`.
  Statements on `crm` name tables unqualified (search_path = public) or as
  `public.x` / `staging.x`; statements on `billing` always qualify: `finance.payments`.
* MariaDB-like `logistics` (audited by mariadb_audit): a MariaDB database *is* a
  schema, so the schema part repeats the database: `logistics.logistics.waybills`.
  Statements name `waybills`, `` `waybills` `` or `logistics.waybills` (database.table).

An event's `database` plus a statement's table name therefore always resolves to
exactly one key. Categories are the contract's: name, phone, national_id,
address, financial.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CRM, BILLING, LOGISTICS = "crm", "billing", "logistics"


@dataclass(frozen=True)
class Database:
    name: str
    engine: str        # "postgresql" or "mariadb"
    source: str        # the audit adapter that reports it


DATABASES: dict[str, Database] = {
    CRM: Database(CRM, "postgresql", "pgaudit"),
    BILLING: Database(BILLING, "postgresql", "pgaudit"),
    LOGISTICS: Database(LOGISTICS, "mariadb", "mariadb_audit"),
}


@dataclass(frozen=True)
class Relation:
    database: str
    schema: str
    table: str
    columns: tuple[str, ...]
    size: int                                   # rows, roughly
    sensitive: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.database}.{self.schema}.{self.table}"


def _r(db: str, schema: str, table: str, columns: str, size: int, **sensitive: str) -> Relation:
    return Relation(db, schema, table, tuple(columns.split()), size, dict(sensitive))


_RELATIONS = (
    _r(CRM, "public", "customers",
       "id name gender birth_date phone email id_card_no province city district address bank_card member_level points "
       "remark marketing_opt_in created_at updated_at last_order_at", 2_400_000,
       name="name", phone="phone", id_card_no="national_id", address="address", bank_card="financial"),
    _r(CRM, "public", "customer_addresses",
       "id customer_id receiver_name receiver_phone province city district detail_address is_default created_at", 3_900_000,
       receiver_name="name", receiver_phone="phone", detail_address="address"),
    _r(CRM, "public", "orders",
       "id order_no customer_id store_id channel status total_amount pay_method ship_name ship_phone ship_address "
       "created_at updated_at notified_at", 31_000_000,
       ship_name="name", ship_phone="phone", ship_address="address"),
    _r(CRM, "public", "order_items", "id order_id sku_id quantity unit_price discount", 78_000_000),
    _r(CRM, "public", "products", "id sku name category_id brand price status updated_at", 180_000),
    _r(CRM, "public", "categories", "id parent_id name", 2_100),
    _r(CRM, "public", "inventory", "sku_id warehouse_id on_hand reserved updated_at", 900_000),
    _r(CRM, "public", "stores", "id name city manager opened_at", 350),
    _r(CRM, "public", "tickets",
       "id customer_id order_id channel category status priority assignee contact_phone subject created_at updated_at",
       5_200_000, contact_phone="phone"),
    _r(CRM, "public", "ticket_notes", "id ticket_id author body created_at", 14_000_000),
    _r(CRM, "public", "promotions", "id name starts_at ends_at discount_rule status", 1_200),
    _r(CRM, "public", "coupons", "id customer_id promotion_id code status used_at", 40_000_000),
    _r(CRM, "public", "customers_archive",
       "id name gender birth_date phone email id_card_no province city district address bank_card member_level points "
       "remark marketing_opt_in created_at updated_at last_order_at archived_at", 600_000,
       name="name", phone="phone", id_card_no="national_id", address="address", bank_card="financial"),
    _r(CRM, "staging", "customers_masked",
       "id name gender birth_date phone email id_card_no province city district address bank_card member_level points "
       "created_at", 50_000),
    _r(CRM, "staging", "test_orders", "id order_no customer_id store_id channel status total_amount created_at", 200_000),
    _r(BILLING, "finance", "payments",
       "id order_id customer_id amount currency method bank_card card_holder status paid_at settled_at", 29_000_000,
       bank_card="financial", card_holder="name"),
    _r(BILLING, "finance", "refunds",
       "id payment_id order_id amount reason status bank_card card_holder created_at approved_by paid_out_at", 1_100_000,
       bank_card="financial", card_holder="name"),
    _r(BILLING, "finance", "invoices",
       "id order_id customer_id buyer_name buyer_tax_no buyer_phone buyer_address amount tax_amount issued_at", 6_000_000,
       buyer_name="name", buyer_phone="phone", buyer_address="address"),
    _r(BILLING, "finance", "ledger_entries", "id account_code debit credit entry_date memo ref_id", 60_000_000),
    _r(BILLING, "finance", "settlements", "id channel settle_date gross fee net status", 4_000),
    _r(BILLING, "finance", "gl_accounts", "code name type", 300),
    _r(LOGISTICS, LOGISTICS, "waybills",
       "waybill_no order_no sender_name sender_phone sender_address receiver_name receiver_phone receiver_province "
       "receiver_city receiver_address weight_g status origin_station_id dest_station_id courier_id priority created_at "
       "updated_at delivered_at", 19_000_000,
       sender_name="name", sender_phone="phone", sender_address="address",
       receiver_name="name", receiver_phone="phone", receiver_address="address"),
    _r(LOGISTICS, LOGISTICS, "scan_events", "id waybill_no station_id scan_type operator_id scanned_at", 140_000_000),
    _r(LOGISTICS, LOGISTICS, "couriers",
       "courier_id name phone id_card_no station_id vehicle_plate status hired_at", 14_000,
       name="name", phone="phone", id_card_no="national_id"),
    _r(LOGISTICS, LOGISTICS, "stations", "station_id name city district capacity", 900),
    _r(LOGISTICS, LOGISTICS, "routes", "route_id origin_station_id dest_station_id distance_km eta_hours", 5_000),
    _r(LOGISTICS, LOGISTICS, "pickup_requests",
       "id contact_name contact_phone pickup_address city window_start window_end status courier_id created_at", 2_300_000,
       contact_name="name", contact_phone="phone", pickup_address="address"),
    _r(LOGISTICS, LOGISTICS, "delivery_exceptions", "id waybill_no reason status handler created_at", 400_000),
)
RELATIONS: dict[str, Relation] = {r.name: r for r in _RELATIONS}


def relation(name: str) -> Relation:
    return RELATIONS[name]


def objects(*names: str) -> tuple[str, ...]:
    """A statement's `objects`, checked against the schema at import time."""
    for n in names:
        if n not in RELATIONS:
            raise KeyError(f"unknown relation {n!r}")
    return names


def catalog_mapping() -> dict:
    """catalog.yaml per the contract (section 3)."""
    return {"objects": {r.name: dict(r.sensitive) for r in _RELATIONS if r.sensitive}}


# The `objects` tuples statements carry (one constant each: events share them).
O_CUSTOMERS = objects("crm.public.customers")
O_ADDRESSES = objects("crm.public.customer_addresses")
O_ORDERS = objects("crm.public.orders")
O_ITEMS = objects("crm.public.order_items")
O_ITEMS_PRODUCTS = objects("crm.public.order_items", "crm.public.products")
O_PRODUCTS = objects("crm.public.products")
O_INVENTORY = objects("crm.public.inventory")
O_STORES = objects("crm.public.stores")
O_TICKETS = objects("crm.public.tickets")
O_NOTES = objects("crm.public.ticket_notes")
O_PROMOS = objects("crm.public.promotions")
O_COUPONS = objects("crm.public.coupons")
O_ORDERS_CUSTOMERS = objects("crm.public.orders", "crm.public.customers")
O_ARCHIVE = objects("crm.public.customers_archive", "crm.public.customers")
O_MASKED = objects("crm.staging.customers_masked")
O_TEST_ORDERS = objects("crm.staging.test_orders")
O_PAYMENTS = objects("billing.finance.payments")
O_REFUNDS = objects("billing.finance.refunds")
O_INVOICES = objects("billing.finance.invoices")
O_LEDGER = objects("billing.finance.ledger_entries")
O_SETTLEMENTS = objects("billing.finance.settlements")
O_PAYMENTS_SETTLEMENTS = objects("billing.finance.payments", "billing.finance.settlements")
O_WAYBILLS = objects("logistics.logistics.waybills")
O_SCANS = objects("logistics.logistics.scan_events")
O_COURIERS = objects("logistics.logistics.couriers")
O_STATIONS = objects("logistics.logistics.stations")
O_PICKUPS = objects("logistics.logistics.pickup_requests")
O_EXCEPTIONS = objects("logistics.logistics.delivery_exceptions", "logistics.logistics.waybills")
O_EXCEPTIONS_ONLY = objects("logistics.logistics.delivery_exceptions")
O_ROUTES = objects("logistics.logistics.routes")

"""Statement analysis: literal-free fingerprints, what a statement reads, and the shape cache.

The statements marked "captured" are the exact SQL of the workload captured on PostgreSQL 15 +
pgaudit and MariaDB 10.11 + server_audit (shared/samples/workload, the pgaudit csvlog, the
pg_dump log and the MariaDB audit log); they are copied here so the tests stand alone.
"""

from __future__ import annotations

import pytest

from detector.sql import (
    ACTIONS,
    StatementAnalyzer,
    StatementShape,
    fingerprint,
    literal_as_int,
)

PHONE = "13800001234"
ID_CARD = "11010519491231002X"
ID_CARD_DIGITS = "110105194912310021"


def analyze(statement: str) -> tuple[StatementShape, tuple[str, ...]]:
    """A fresh analyzer, so no test depends on what another one cached."""
    return StatementAnalyzer().analyze(statement)


# --------------------------------------------------------------------------------------
# Captured SQL
# --------------------------------------------------------------------------------------

CAPTURED_PG = [
    "SELECT name, phone, id_card_no FROM customers WHERE id = 7;",
    "SELECT * FROM customers;",
    "SELECT * FROM customers ORDER BY id LIMIT 50 OFFSET 0;",
    "SELECT * FROM customers ORDER BY id LIMIT 50 OFFSET 150;",
    "COPY customers TO STDOUT WITH (FORMAT csv, HEADER);",
    "COPY  ( SELECT id, name, bank_card FROM customers WHERE id <= 20 ) TO STDOUT CSV",
    "PREPARE q(int) AS SELECT name, bank_card FROM customers WHERE id = $1;",
    "EXECUTE q(99);",
    "BEGIN;",
    "DECLARE c CURSOR FOR SELECT * FROM customers;",
    "FETCH 100 FROM c;",
    "CLOSE c;",
    "COMMIT;",
    "SELECT * FROM payroll;",
    "UPDATE customers SET phone = 'x' WHERE id = 1;",
    "SELECT * FROM customerz;",
    "SELECT id, name, phone FROM customers WHERE id = $1",
    "UPDATE customers SET address = $1 WHERE id = $2",
    'DECLARE "bulk_cur" CURSOR FOR SELECT * FROM customers ORDER BY id',
    'FETCH FORWARD 50 FROM "bulk_cur"',
    'CLOSE "bulk_cur"',
    (
        "CREATE TABLE customers (\n  id          integer PRIMARY KEY,\n  name        text NOT NULL,\n"
        "  phone       text,\n  id_card_no  text,\n  address     text,\n  bank_card   text\n);"
    ),
    (
        "INSERT INTO customers\nSELECT g,\n       'Customer ' || g,\n"
        "       '+1-555-' || lpad((1000 + g)::text, 4, '0'),\n"
        "       'ID' || lpad((g * 7919 % 1000000000)::text, 9, '0'),\n"
        "       g || ' Main St, Springfield',\n"
        "       '4111' || lpad((g * 104729 % 1000000000000)::text, 12, '0')\n"
        "FROM generate_series(1, 200) g;"
    ),
    "INSERT INTO payroll VALUES (1, 100000), (2, 120000);",
    "GRANT SELECT ON customers TO alice;",
    "CREATE ROLE alice LOGIN PASSWORD <REDACTED>",
    "ALTER SYSTEM SET auto_explain.log_format = 'json';",
    "SELECT pg_catalog.set_config('search_path', '', false);",
    "SET DATESTYLE = ISO",
    "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
    "LOCK TABLE public.customers IN ACCESS SHARE MODE",
    "COPY public.customers (id, name, phone, id_card_no, address, bank_card) TO stdout;",
]

CAPTURED_MARIADB = [
    (
        "select plugin_name, plugin_version, plugin_maturity from information_schema.plugins "
        "where plugin_name like 'SERVER_AUDIT'"
    ),
    "show global variables like 'server_audit%'",
    "SELECT * FROM customers ORDER BY id LIMIT 50 OFFSET 100",
    (
        "SELECT * FROM customers INTO OUTFILE '/var/lib/dbaudit/mysql/outfiles/alice_dump.csv' "
        "FIELDS TERMINATED BY ','"
    ),
    "PREPARE q FROM 'SELECT name, bank_card FROM customers WHERE id = ?'",
    "SET @id = 99",
    "SELECT name, bank_card FROM customers WHERE id = 99",
    "UPDATE customers SET address = '7 New Rd, Shelbyville' WHERE id = 42",
    (
        "INSERT INTO customers\n  SELECT seq, CONCAT('Customer ', seq), CONCAT('+1-555-', "
        "LPAD(1000+seq,4,'0')),\n         CONCAT('ID', LPAD(seq*7919 % 1000000000, 9, '0')), "
        "CONCAT(seq, ' Main St, Springfield'),\n         CONCAT('4111', "
        "LPAD(seq*104729 % 1000000000000, 12, '0'))\n  FROM seq_1_to_200"
    ),
    "INSERT INTO payroll VALUES (1,100000),(2,120000)",
    "CREATE USER 'app_billing'@'127.0.0.1' IDENTIFIED BY *****",
    "GRANT SELECT, UPDATE ON crm.customers TO 'app_billing'@'127.0.0.1'",
    (
        "UPDATE performance_schema.setup_consumers SET ENABLED='YES' WHERE NAME IN "
        "('events_statements_current','events_statements_history',"
        "'events_statements_history_long')"
    ),
    "select count(*) from performance_schema.events_statements_history_long",
    "SELECT id,\n  name\nFROM crm.customers\nWHERE id = 3",
    "SET NAMES utf8mb4",
    "SET AUTOCOMMIT = 0",
]

CAPTURED = CAPTURED_PG + CAPTURED_MARIADB


@pytest.mark.parametrize("statement", CAPTURED)
def test_captured_statements_are_analysed_without_error_and_keep_the_literal_invariant(
    statement: str,
) -> None:
    shape, literals = analyze(statement)
    text, fp_literals = fingerprint(statement)
    assert shape.fingerprint == text and literals == fp_literals
    assert shape.action in ACTIONS
    assert shape.parsed, "captured SQL must parse, not fall back to the regex"
    if "?" not in statement:
        assert text.count("?") == len(literals)
    assert_literals_appear_in_order(statement, literals)


@pytest.mark.parametrize(
    ("statement", "action", "relations", "star", "is_export"),
    [
        ("SELECT * FROM customers;", "SELECT", ("customers",), ("customers",), False),
        ("COPY customers TO STDOUT WITH (FORMAT csv, HEADER);", "COPY", ("customers",),
         ("customers",), True),
        ("DECLARE c CURSOR FOR SELECT * FROM customers;", "SELECT", ("customers",),
         ("customers",), False),
        (
            (
                "SELECT * FROM customers INTO OUTFILE "
                "'/var/lib/dbaudit/mysql/outfiles/alice_dump.csv' FIELDS TERMINATED BY ','"
            ),
            "EXPORT", ("customers",), ("customers",), True,
        ),
        ("UPDATE customers SET phone = 'x' WHERE id = 1;", "UPDATE", ("customers",), (), False),
        ("SELECT * FROM customerz;", "SELECT", ("customerz",), ("customerz",), False),
        ("FETCH 100 FROM c;", "OTHER", (), (), False),
        ("BEGIN;", "OTHER", (), (), False),
        ("SET AUTOCOMMIT = 0", "OTHER", (), (), False),
        ("CREATE ROLE alice LOGIN PASSWORD <REDACTED>", "DDL", (), (), False),
        ("GRANT SELECT ON customers TO alice;", "DDL", ("customers",), (), False),
        ("LOCK TABLE public.customers IN ACCESS SHARE MODE", "OTHER", (), (), False),
    ],
)
def test_captured_statements_read_what_they_say(
    statement: str, action: str, relations: tuple, star: tuple, is_export: bool
) -> None:
    shape, _ = analyze(statement)
    assert (shape.action, shape.relations, shape.star_relations, shape.is_export) == (
        action, relations, star, is_export,
    )


def assert_literals_appear_in_order(statement: str, literals: tuple[str, ...]) -> None:
    """Each literal is raw text of the statement, found left to right."""
    at = 0
    for literal in literals:
        found = statement.find(literal, at)
        assert found >= 0, f"{literal!r} is not raw statement text after position {at}"
        at = found + len(literal)


# --------------------------------------------------------------------------------------
# Fingerprints: stable, literal-free
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (f"SELECT * FROM customers WHERE phone = '{PHONE}'",
         "SELECT * FROM customers WHERE phone = '13999999999'"),
        ("SELECT * FROM customers WHERE id = 7", "SELECT * FROM customers WHERE id = 123456"),
        ("SELECT * FROM customers WHERE id = 7", "SELECT * FROM customers WHERE id = -7.5e3"),
        ("SELECT * FROM t WHERE name = 'a'", "SELECT * FROM t WHERE name = E'O\\'Brien'"),
        ("SELECT * FROM t WHERE name = 'a'", "SELECT * FROM t WHERE name = $$O'Brien$$"),
        ("SELECT * FROM t WHERE name = 'a'", "SELECT * FROM t WHERE name = _utf8mb4'张三'"),
        ("SELECT * FROM customers ORDER BY id LIMIT 50 OFFSET 0",
         "SELECT * FROM customers ORDER BY id LIMIT 100 OFFSET 5000"),
        ("INSERT INTO t (a, b) VALUES (1, 'x')",
         "INSERT INTO t (a, b) VALUES (2, 'y'), (3, 'z'), (4, 'w')"),
        ("SELECT * FROM t WHERE id = ANY(ARRAY[1])", "SELECT * FROM t WHERE id = ANY(ARRAY[1,2,3])"),
        ("SELECT * FROM t WHERE a IN (1)", "SELECT * FROM t WHERE a IN (+1, -2.5, 3e2, .5)"),
    ],
)
def test_fingerprint_does_not_change_with_literal_values(first: str, second: str) -> None:
    assert fingerprint(first)[0] == fingerprint(second)[0]


@pytest.mark.parametrize("count", [1, 2, 20, 500])
def test_in_list_of_any_length_is_one_literal_under_one_fingerprint(count: int) -> None:
    ids = ", ".join(str(1000 + i) for i in range(count))
    text, literals = fingerprint(f"SELECT name FROM customers WHERE id IN ({ids})")
    assert text == "select name from customers where id in (?)"
    assert literals == (ids,)


def test_in_list_of_strings_with_escaped_quotes_is_one_literal() -> None:
    text, literals = fingerprint("SELECT 1 FROM t WHERE name IN ('a', 'O''Brien', 'c')")
    assert text == "select ? from t where name in (?)"
    assert literals == ("1", "'a', 'O''Brien', 'c'")


SECRET_STATEMENTS = [
    (PHONE, f"SELECT * FROM customers WHERE phone = '{PHONE}'"),
    (PHONE, f"SELECT * FROM customers WHERE phone={PHONE}"),
    (PHONE, f"SELECT * FROM customers WHERE phone = '+86 {PHONE}'::text"),
    (ID_CARD, f"SELECT * FROM customers WHERE id_card_no = '{ID_CARD}'"),
    (ID_CARD_DIGITS, f"SELECT * FROM customers WHERE id_card_no = {ID_CARD_DIGITS}"),
    ("Brien", "SELECT id FROM customers WHERE name = 'O''Brien'"),
    ("Brien", "SELECT id FROM customers WHERE name = E'O\\'Brien'"),
    ("Brien", "SELECT id FROM customers WHERE name = 'O\\'Brien' AND id > 0"),  # MySQL escape
    ("Brien", "SELECT id FROM customers WHERE name = \"O'Brien\""),  # MySQL double quotes
    ("Brien", "SELECT id FROM customers WHERE name = $$O'Brien$$"),
    ("Brien", "SELECT id FROM customers WHERE name = $n$O'Brien $$ x$n$"),
    ("Brien", "SELECT id FROM customers WHERE name = N'O''Brien'"),
    ("Brien", "SELECT id FROM customers WHERE name = U&'O''Brien'"),
    ("Brien", "SELECT id FROM customers WHERE name LIKE '%Brien%'"),
    ("Brien", "SELECT id FROM customers WHERE name IN ('Smith', 'O''Brien')"),
    ("Brien", "SELECT id FROM customers WHERE data @> '{\"name\": \"O Brien\"}'"),
    # A PostgreSQL string ending in a backslash: read the MySQL way, its closing quote would
    # pair with the next string's opening quote and leave O''Brien outside any string.
    ("Brien", "SELECT * FROM files WHERE dir = 'C:\\' AND owner = 'O''Brien'"),
    ("Brien", "SELECT * FROM files WHERE dir = 'C:\\' AND owner IN ('O''Brien', 'x')"),
    ("张三", "SELECT * FROM customers WHERE name = _utf8mb4'张三' COLLATE utf8mb4_bin"),
    ("12345", "SELECT * FROM t WHERE a = -12345"),
    ("12345", "SELECT * FROM t WHERE a - 12345 > 0"),
    ("12345", "SELECT * FROM t WHERE a = 12345.678"),
    ("12345", "SELECT * FROM t WHERE a = .12345"),
    ("12345", "SELECT * FROM t WHERE a = 1.5e12345"),
    ("12345", "SELECT * FROM t WHERE a IN (-12345, +12345)"),
    ("0x1F2E", "SELECT * FROM t WHERE a = 0x1F2E"),
    ("DEADBEEF", "SELECT * FROM t WHERE a = x'DEADBEEF'"),
    ("12345", "INSERT INTO t (a, b) VALUES (1, 12345), (2, '12345')"),
    ("12345", "SELECT * FROM t WHERE d > now() - interval '12345 days'"),
    ("12345", "SELECT * FROM t WHERE a = 5 -- 12345"),
    ("12345", "SELECT * FROM t WHERE a = 5 /* 12345 */"),
    ("12345", "SELECT * FROM t WHERE a = 5 # 12345"),
    ("12345", "SELECT * FROM t WHERE a = 'unterminated 12345"),
    ("12345", "SELECT * FROM t WHERE a = $$unterminated 12345"),
    ("12345", "SELECT * FROM t LIMIT 12345, 10"),
]


@pytest.mark.parametrize(("secret", "statement"), SECRET_STATEMENTS)
def test_no_literal_value_appears_in_the_fingerprint_or_the_shape(
    secret: str, statement: str
) -> None:
    shape, literals = analyze(statement)
    assert secret.lower() not in shape.fingerprint.lower()
    assert secret.lower() not in repr(shape).lower(), "a shape field carries a literal"
    if "#" not in statement and "--" not in statement and "/*" not in statement:
        assert any(secret.lower() in literal.lower() for literal in literals)


@pytest.mark.parametrize(
    "statement",
    [statement for _, statement in SECRET_STATEMENTS]
    + [
        "SELECT 1",
        "SELECT a.b, t1.c2, seq_1_to_200 FROM t1 WHERE x = 1 AND y = 'z' AND z IN (1, 2)",
        "INSERT INTO t VALUES (1, 'a'), (2, 'b')",
        "SELECT * FROM t WHERE a = E'x' AND b = B'01' AND c = X'FF' AND d = N'n' AND e = 5",
        "SELECT * FROM t WHERE a = 1 AND b = 2 AND c = 3 ORDER BY d LIMIT 4 OFFSET 5",
    ],
)
def test_each_question_mark_added_is_one_literal_in_order(statement: str) -> None:
    text, literals = fingerprint(statement)
    assert text.count("?") == len(literals)
    assert_literals_appear_in_order(statement, literals)


@pytest.mark.parametrize(
    ("statement", "text", "literals"),
    [
        ("SELECT * FROM t WHERE x = -5", "select * from t where x = ?", ("-5",)),
        ("SELECT * FROM t WHERE x = - 5", "select * from t where x = ?", ("- 5",)),
        ("SELECT * FROM t WHERE x IN (-5)", "select * from t where x in (?)", ("-5",)),
        ("SELECT a - 5 FROM t", "select a - ? from t", ("5",)),
        ("SELECT a-5 FROM t", "select a-? from t", ("5",)),
        ("SELECT * FROM t WHERE x = .5", "select * from t where x = ?", (".5",)),
        ("SELECT * FROM t WHERE x = 5.", "select * from t where x = ?", ("5.",)),
        ("SELECT * FROM t WHERE x = 1.5e-3", "select * from t where x = ?", ("1.5e-3",)),
        ("SELECT * FROM t WHERE x = 0x1F", "select * from t where x = ?", ("0x1F",)),
        ("SELECT t1.c2, a.b FROM t1, a", "select t1.c2, a.b from t1, a", ()),
        ("SELECT * FROM seq_1_to_200", "select * from seq_1_to_200", ()),
    ],
)
def test_numbers_signs_and_digits_in_names(statement: str, text: str, literals: tuple) -> None:
    assert fingerprint(statement) == (text, literals)


def test_bind_placeholders_are_kept_and_are_not_literals() -> None:
    assert fingerprint("SELECT * FROM t WHERE a = $1 AND b = $2") == (
        "select * from t where a = $1 and b = $2", (),
    )
    assert fingerprint("SELECT * FROM t WHERE a = %s AND b = :name") == (
        "select * from t where a = %s and b = :name", (),
    )
    # JDBC '?' stays; only the literal becomes a (second) '?'
    assert fingerprint("SELECT * FROM t WHERE a = ? AND b = 5") == (
        "select * from t where a = ? and b = ?", ("5",),
    )


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT id /* 13800001234 */ FROM t -- note 13800001234\nWHERE id = 5",
        "SELECT id FROM t # note 13800001234\nWHERE id = 5",
        "/* leading */ SELECT id FROM t WHERE id = 5 -- trailing",
        "SELECT id FROM t WHERE id = 5 /* unterminated",
    ],
)
def test_comments_are_removed(statement: str) -> None:
    assert fingerprint(statement) == ("select id from t where id = ?", ("5",))


def test_postgres_json_operators_are_not_mysql_comments() -> None:
    text, _ = fingerprint("SELECT data #>> '{a}' FROM t WHERE data#>'{b}' = 'x'")
    assert text == "select data #>> ? from t where data#>? = ?"


def test_case_whitespace_and_trailing_semicolons_are_normalised() -> None:
    messy = "  SeLeCt   Name,\tPhone\r\nFROM    Customers\n\n  WHERE ID =\n 5 ;; \n"
    assert fingerprint(messy)[0] == fingerprint("select name, phone from customers where id = 1")[0]
    assert fingerprint(messy)[0] == "select name, phone from customers where id = ?"


def test_multi_line_statement_reads_like_its_one_line_form() -> None:
    multi = "SELECT c.name,\n       c.phone\n  FROM customers c\n WHERE c.id = 7\n ORDER BY c.name"
    shape, literals = analyze(multi)
    assert shape.fingerprint == "select c.name, c.phone from customers c where c.id = ? order by c.name"
    assert shape.columns == (("customers", "name"), ("customers", "phone"), ("customers", "id"))
    assert shape.key_column == "id" and literal_as_int(literals, shape.key_literal_index) == 7


def test_mysql_backtick_identifiers_are_identifiers() -> None:
    shape, literals = analyze("SELECT `name`, `phone` FROM `crm`.`customers` WHERE `id` = 5")
    assert shape.fingerprint == "select `name`, `phone` from `crm`.`customers` where `id` = ?"
    assert shape.relations == ("crm.customers",)
    assert shape.columns == (
        ("crm.customers", "name"), ("crm.customers", "phone"), ("crm.customers", "id"),
    )
    assert literals == ("5",)


def test_postgres_quoted_identifiers_keep_their_case_in_the_fingerprint() -> None:
    shape, _ = analyze('SELECT "Name", "phone" FROM "Customers" WHERE "Id" = 5')
    assert shape.fingerprint == 'select "Name", "phone" from "Customers" where "Id" = ?'
    # names are reported lower-case: the catalog matches relations case-insensitively
    assert shape.relations == ("customers",)
    assert ("customers", "name") in shape.columns


def test_quoted_schema_and_table_names_are_identifiers_not_literals() -> None:
    text, literals = fingerprint('SELECT "customers"."phone" FROM "public"."customers"')
    assert text == 'select "customers"."phone" from "public"."customers"' and literals == ()


def test_mysql_double_quoted_value_is_a_literal() -> None:
    assert fingerprint('SELECT id FROM t WHERE name = "Smith"') == (
        "select id from t where name = ?", ('"Smith"',),
    )


def test_mysql_backslash_escape_keeps_the_string_whole() -> None:
    assert fingerprint("SELECT 1 FROM t WHERE name = 'O\\'Brien' AND phone = '138'") == (
        "select ? from t where name = ? and phone = ?", ("1", "'O\\'Brien'", "'138'"),
    )


def test_postgres_string_ending_in_a_backslash_is_one_literal() -> None:
    assert fingerprint("SELECT 1 FROM t WHERE dir = 'C:\\' AND owner = 'O''Brien'") == (
        "select ? from t where dir = ? and owner = ?", ("1", "'C:\\'", "'O''Brien'"),
    )


GARBAGE: list[object] = [
    "",
    " ",
    ";",
    "\x00\x01",
    ")))((( SELECT FROM WHERE '",
    "SELECT * FROM t WHERE a = 'unterminated",
    "SELECT \"unterminated",
    "SELECT `unterminated",
    "SELECT $$unterminated",
    "SELECT /* unterminated",
    "'" * 101,
    "\\" * 100 + "'",
    "SELECT 1e 0x 0b2 1_ ._ .e5 5..5 12abc $1$ @@ ?? %% ::",
    "ñ 张三 \ud800 \U0001f600",
    "SELECT " + "(" * 5000,
    None,
    42,
    b"SELECT * FROM t WHERE a = '\xff'",
    bytearray(b"SELECT 1"),
]


@pytest.mark.parametrize("statement", GARBAGE)
def test_garbage_never_raises(statement: object) -> None:
    shape, literals = StatementAnalyzer().analyze(statement)  # type: ignore[arg-type]
    assert shape.action in ACTIONS and isinstance(literals, tuple)
    if isinstance(statement, str):
        text, _ = fingerprint(statement)
        assert text == shape.fingerprint


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT " + "a, " * 100_000 + "b FROM t WHERE c = 'x'",
        "SELECT * FROM t WHERE id IN (" + ", ".join(str(i) for i in range(60_000)) + ")",
        "SELECT '" + "x\\'" * 50_000,
        "SELECT " + "(" * 20_000 + "1" + ")" * 20_000,
    ],
    ids=["long-select", "huge-in-list", "unterminated-escapes", "deep-nesting"],
)
def test_huge_input_never_raises_and_keeps_the_invariant(statement: str) -> None:
    shape, literals = analyze(statement)
    assert shape.action == "SELECT"
    assert shape.fingerprint.count("?") == len(literals)


def test_fingerprint_id_is_a_stable_hash_of_the_fingerprint() -> None:
    shape, _ = analyze("SELECT * FROM customers WHERE id = 5")
    again, _ = analyze("select *  from customers where id = 6")
    assert shape.fingerprint_id == again.fingerprint_id
    assert len(shape.fingerprint_id) == 16 and int(shape.fingerprint_id, 16) >= 0


# --------------------------------------------------------------------------------------
# What a statement reads
# --------------------------------------------------------------------------------------


def test_select_reports_its_relation_and_columns() -> None:
    shape, _ = analyze("SELECT name, phone FROM customers WHERE city = 'x'")
    assert shape.action == "SELECT" and shape.relations == ("customers",)
    assert shape.columns == (("customers", "name"), ("customers", "phone"), ("customers", "city"))
    assert shape.star_relations == () and shape.has_where and not shape.has_limit


def test_join_columns_are_resolved_through_aliases() -> None:
    shape, _ = analyze(
        "SELECT c.name, o.total FROM customers c JOIN orders AS o ON o.customer_id = c.id "
        "WHERE c.id = 5"
    )
    assert shape.relations == ("customers", "orders")
    assert set(shape.columns) == {
        ("customers", "name"), ("orders", "total"), ("orders", "customer_id"), ("customers", "id"),
    }


def test_qualified_star_reads_only_its_own_relation() -> None:
    shape, _ = analyze("SELECT c.*, o.total FROM customers c JOIN orders o ON o.cid = c.id")
    assert shape.star_relations == ("customers",)
    assert ("customers", "*") in shape.columns and ("orders", "total") in shape.columns


def test_cte_names_are_not_relations_but_what_they_read_is() -> None:
    shape, _ = analyze(
        "WITH recent AS (SELECT customer_id FROM orders WHERE created > now() - interval '1 day')"
        " SELECT c.* FROM customers c JOIN recent r ON r.customer_id = c.id"
    )
    assert shape.relations == ("customers", "orders")
    assert "recent" not in shape.relations
    assert shape.star_relations == ("customers",)
    assert ("orders", "customer_id") in shape.columns


def test_chained_ctes_resolve_to_the_underlying_relation() -> None:
    shape, _ = analyze("WITH a AS (SELECT id FROM customers), b AS (SELECT id FROM a) SELECT * FROM b")
    assert shape.relations == ("customers",)
    assert shape.columns == (("customers", "id"),)


def test_subquery_in_from_reads_its_columns_not_the_whole_relation() -> None:
    shape, _ = analyze("SELECT * FROM (SELECT id, phone FROM customers) sub")
    assert shape.relations == ("customers",)
    assert shape.columns == (("customers", "id"), ("customers", "phone"))
    assert shape.star_relations == ()


def test_subquery_in_where_adds_its_relation() -> None:
    shape, _ = analyze(
        "SELECT name FROM customers WHERE id IN (SELECT customer_id FROM orders WHERE total > 100)"
    )
    assert shape.relations == ("customers", "orders")
    assert ("orders", "customer_id") in shape.columns and ("customers", "name") in shape.columns


def test_union_reads_every_branch() -> None:
    shape, _ = analyze("SELECT name, phone FROM customers UNION SELECT name, phone FROM suppliers")
    assert shape.action == "SELECT"
    assert shape.relations == ("customers", "suppliers")
    assert ("suppliers", "phone") in shape.columns and ("customers", "phone") in shape.columns
    assert not shape.has_where


def test_union_has_where_only_when_every_branch_filters() -> None:
    one, _ = analyze("SELECT name FROM a WHERE id = 1 UNION SELECT name FROM b")
    both, _ = analyze("SELECT name FROM a WHERE id = 1 UNION SELECT name FROM b WHERE id = 2")
    assert not one.has_where and both.has_where


def test_select_star_reads_the_whole_relation() -> None:
    shape, _ = analyze("SELECT * FROM customers")
    assert shape.star_relations == ("customers",) and shape.columns == (("customers", "*"),)
    assert not (shape.has_where or shape.has_limit or shape.is_aggregate)


def test_insert_update_delete_actions() -> None:
    assert analyze("INSERT INTO t (a) VALUES (1)")[0].action == "INSERT"
    assert analyze("UPDATE t SET a = 1 WHERE b = 2")[0].action == "UPDATE"
    assert analyze("DELETE FROM t WHERE b = 2")[0].action == "DELETE"


# ---- exports ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "COPY customers TO '/tmp/customers.csv'",
        "COPY customers TO STDOUT",
        "COPY customers TO STDOUT WITH (FORMAT csv, HEADER)",
        "COPY customers TO PROGRAM 'gzip > /tmp/c.gz'",
        "\\copy customers TO '/tmp/customers.csv' CSV",
    ],
)
def test_copy_of_a_whole_table_to_a_file_or_client_is_an_export_of_every_column(
    statement: str,
) -> None:
    shape, _ = analyze(statement)
    assert shape.action == "COPY" and shape.is_export
    assert shape.relations == ("customers",) and shape.star_relations == ("customers",)


def test_copy_of_listed_columns_to_a_file_is_an_export_of_those_columns() -> None:
    shape, literals = analyze("COPY customers (id, phone) TO '/tmp/c.csv' WITH CSV")
    assert shape.action == "COPY" and shape.is_export
    assert shape.columns == (("customers", "id"), ("customers", "phone"))
    assert shape.star_relations == ()
    assert literals == ("'/tmp/c.csv'",)


def test_copy_of_a_query_to_stdout_is_an_export_of_what_the_query_reads() -> None:
    shape, _ = analyze("COPY (SELECT * FROM customers WHERE city = 'x') TO STDOUT")
    assert shape.action == "COPY" and shape.is_export and shape.has_where
    assert shape.star_relations == ("customers",)


def test_pg_dump_copy_is_an_export_of_the_listed_columns() -> None:
    shape, literals = analyze(
        "COPY public.customers (id, name, phone, id_card_no, address, bank_card) TO stdout;"
    )
    assert shape.action == "COPY" and shape.is_export and literals == ()
    assert shape.relations == ("public.customers",)
    assert {column for _, column in shape.columns} == {
        "id", "name", "phone", "id_card_no", "address", "bank_card",
    }
    assert not (shape.has_where or shape.has_limit)


@pytest.mark.parametrize(
    "statement",
    ["COPY customers FROM '/tmp/c.csv' WITH CSV", "COPY customers FROM STDIN",
     "COPY customers (id, phone) FROM STDIN WITH (FORMAT csv)"],
)
def test_copy_from_is_a_load_not_an_export(statement: str) -> None:
    shape, _ = analyze(statement)
    assert shape.action == "COPY" and not shape.is_export
    assert shape.star_relations == ()


def test_mysql_select_into_outfile_is_an_export() -> None:
    shape, literals = analyze(
        "SELECT * FROM customers INTO OUTFILE '/tmp/x.csv' FIELDS TERMINATED BY ',' "
        "ENCLOSED BY '\"' LINES TERMINATED BY '\\n'"
    )
    assert shape.action == "EXPORT" and shape.is_export
    assert shape.star_relations == ("customers",)
    assert literals[0] == "'/tmp/x.csv'"


def test_mysql_select_into_dumpfile_is_an_export() -> None:
    shape, _ = analyze("SELECT phone FROM customers WHERE id = 1 INTO DUMPFILE '/tmp/x'")
    assert shape.action == "EXPORT" and shape.is_export


# ---- paging ----------------------------------------------------------------------------


def test_postgres_limit_offset_exposes_the_offset_literal() -> None:
    shape, literals = analyze("SELECT * FROM customers ORDER BY id LIMIT 50 OFFSET 1500")
    assert shape.has_limit and not shape.has_where
    assert shape.offset_literal_index == 1
    assert literal_as_int(literals, shape.offset_literal_index) == 1500


def test_mysql_limit_offset_comma_count_exposes_the_offset_literal() -> None:
    for statement in ("SELECT * FROM customers ORDER BY id LIMIT 1500, 50",
                      "select * from `customers` order by `id` limit 1500,50"):
        shape, literals = analyze(statement)
        assert shape.has_limit
        assert literal_as_int(literals, shape.offset_literal_index) == 1500, statement


def test_standard_offset_fetch_exposes_the_offset_literal() -> None:
    shape, literals = analyze("SELECT * FROM customers ORDER BY id OFFSET 700 ROWS FETCH NEXT 50 ROWS ONLY")
    assert shape.has_limit and literal_as_int(literals, shape.offset_literal_index) == 700


def test_offset_index_follows_the_literals_before_it() -> None:
    shape, literals = analyze(
        "SELECT * FROM customers WHERE city = 'Paris' AND id > 10 ORDER BY id LIMIT 20 OFFSET 60"
    )
    assert shape.offset_literal_index == 3
    assert literal_as_int(literals, shape.offset_literal_index) == 60


def test_limit_without_offset_has_no_offset_index() -> None:
    shape, _ = analyze("SELECT * FROM customers LIMIT 10")
    assert shape.has_limit and shape.offset_literal_index is None


def test_bind_parameter_offset_has_no_literal_to_read() -> None:
    shape, literals = analyze("SELECT * FROM customers ORDER BY id LIMIT $1 OFFSET $2")
    assert shape.has_limit and literals == ()
    assert literal_as_int(literals, shape.offset_literal_index) is None


@pytest.mark.parametrize("statement, bound", [
    ("SELECT * FROM waybills WHERE waybill_no > 'ZX7310000000204' ORDER BY waybill_no LIMIT 200", "'ZX7310000000204'"),
    ("SELECT id, name FROM customers WHERE city = 'x' AND id >= 4000 ORDER BY id LIMIT 500", "4000"),
    ("SELECT id, name FROM customers WHERE id < 4000 ORDER BY id DESC LIMIT 500", "4000"),
    ("select * from `waybills` where `waybill_no` > 'ZX1' order by `waybill_no` limit 200", "'ZX1'"),
])
def test_keyset_page_exposes_its_bound(statement: str, bound: str) -> None:
    shape, literals = analyze(statement)
    assert literals[shape.keyset_literal_index] == bound


@pytest.mark.parametrize("statement", [
    "SELECT id FROM customers WHERE id < 4000 ORDER BY id LIMIT 500",              # away from the order: not a next page
    "SELECT id FROM customers WHERE id > 4000 ORDER BY name LIMIT 500",            # ordered by another column
    "SELECT id FROM customers WHERE id > 4000 ORDER BY id",                        # no page size
    "SELECT id FROM customers WHERE id > 4000 ORDER BY id LIMIT 50 OFFSET 100",    # an OFFSET page instead
    "SELECT id FROM customers WHERE id > $1 ORDER BY id LIMIT 50",                 # no literal to read
])
def test_other_bounded_reads_are_not_keyset_pages(statement: str) -> None:
    assert analyze(statement)[0].keyset_literal_index is None


# ---- point lookups -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "column", "value"),
    [
        ("SELECT name FROM customers WHERE id = 42", "id", 42),
        ("SELECT name FROM customers WHERE id = '42'", "id", 42),
        (f"SELECT * FROM customers WHERE phone = '{PHONE}'", "phone", int(PHONE)),
        (f"SELECT * FROM customers c WHERE c.phone = '{PHONE}'", "phone", int(PHONE)),
        (f"SELECT * FROM customers WHERE '{PHONE}' = phone", "phone", int(PHONE)),
        (f"SELECT * FROM customers WHERE phone = E'{PHONE}'", "phone", int(PHONE)),
        ("SELECT * FROM customers WHERE id = -42", "id", -42),
        ("SELECT * FROM customers WHERE id = 42::bigint", "id", 42),
        ("SELECT * FROM customers WHERE id = CAST('42' AS int)", "id", 42),
        ("SELECT * FROM customers WHERE (id = 42)", "id", 42),
        ("SELECT `name` FROM `customers` WHERE `id` = 42", "id", 42),
        (f"SELECT * FROM customers WHERE id_card_no = '{ID_CARD}'", "id_card_no", None),
    ],
)
def test_point_lookup_names_its_key_column_and_literal(
    statement: str, column: str, value: int | None
) -> None:
    shape, literals = analyze(statement)
    assert shape.key_column == column
    assert shape.key_literal_index is not None
    assert literal_as_int(literals, shape.key_literal_index) == value


def test_point_lookup_literal_index_counts_the_literals_before_it() -> None:
    shape, literals = analyze("SELECT 'x', name FROM customers WHERE id = 42")
    assert shape.key_column == "id" and shape.key_literal_index == 1
    assert literal_as_int(literals, shape.key_literal_index) == 42


def test_update_and_delete_by_key_are_point_lookups() -> None:
    update, literals = analyze("UPDATE customers SET address = 'x' WHERE id = 42")
    assert update.key_column == "id" and literal_as_int(literals, update.key_literal_index) == 42
    delete, literals = analyze("DELETE FROM customers WHERE id = 42")
    assert delete.key_column == "id" and literal_as_int(literals, delete.key_literal_index) == 42


def test_bind_parameter_lookup_has_a_key_column_but_no_literal() -> None:
    shape, literals = analyze("SELECT id, name, phone FROM customers WHERE id = $1")
    assert shape.key_column == "id" and shape.key_literal_index is None and literals == ()


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM customers WHERE id > 5",
        "SELECT * FROM customers WHERE id BETWEEN 1 AND 100",
        "SELECT * FROM customers WHERE id IN (1, 2, 3)",
        "SELECT * FROM customers WHERE phone = '1' OR phone = '2'",
        "SELECT * FROM customers WHERE name LIKE 'A%'",
        "SELECT * FROM customers",
    ],
)
def test_ranges_lists_and_disjunctions_are_not_point_lookups(statement: str) -> None:
    shape, _ = analyze(statement)
    assert shape.key_column is None and shape.key_literal_index is None


# ---- aggregates -------------------------------------------------------------------------


def test_count_star_is_an_aggregate() -> None:
    shape, _ = analyze("SELECT count(*) FROM customers")
    assert shape.is_aggregate and shape.relations == ("customers",)
    assert shape.star_relations == ()


def test_grouped_count_is_not_an_aggregate_because_it_returns_a_row_per_group() -> None:
    # Decision: GROUP BY city returns one row per city, and the city values themselves;
    # it is a read of customers.city, not a summary, so it is not `is_aggregate`.
    shape, _ = analyze("SELECT city, count(*) FROM customers GROUP BY city")
    assert not shape.is_aggregate
    assert shape.columns == (("customers", "city"),)


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT group_concat(phone) FROM customers",
        "SELECT string_agg(phone, ',') FROM customers",
        "SELECT array_agg(phone) FROM customers",
        "SELECT json_agg(c) FROM customers c",
        "SELECT count(*) OVER (), phone FROM customers",
    ],
)
def test_aggregates_that_carry_the_values_are_not_summaries(statement: str) -> None:
    assert not analyze(statement)[0].is_aggregate


# ---- cursors, DDL, session statements -------------------------------------------------------


def test_declare_cursor_reads_like_its_query() -> None:
    shape, _ = analyze("DECLARE cur SCROLL CURSOR WITH HOLD FOR SELECT * FROM customers ORDER BY id")
    assert shape.action == "SELECT" and shape.star_relations == ("customers",)


def test_fetch_from_a_cursor_is_other_with_its_count_as_a_literal() -> None:
    shape, literals = analyze('FETCH FORWARD 50 FROM "bulk_cur"')
    assert shape.action == "OTHER" and shape.relations == () and literals == ("50",)


def test_prepare_as_reads_like_its_query() -> None:
    shape, _ = analyze("PREPARE q(int) AS SELECT name, bank_card FROM customers WHERE id = $1")
    assert shape.action == "SELECT" and ("customers", "bank_card") in shape.columns


@pytest.mark.parametrize(
    ("statement", "action"),
    [
        ("CREATE TABLE t (id int)", "DDL"),
        ("CREATE INDEX i ON customers (phone)", "DDL"),
        ("ALTER TABLE customers ADD COLUMN x int", "DDL"),
        ("DROP TABLE customers", "DDL"),
        ("TRUNCATE customers", "DDL"),
        ("GRANT SELECT ON customers TO bob", "DDL"),
        ("REVOKE SELECT ON customers FROM bob", "DDL"),
        ("SET search_path TO public", "OTHER"),
        ("SET @id = 99", "OTHER"),
        ("SHOW server_version", "OTHER"),
        ("SHOW TABLES", "OTHER"),
        ("BEGIN", "OTHER"),
        ("START TRANSACTION", "OTHER"),
        ("COMMIT", "OTHER"),
        ("ROLLBACK", "OTHER"),
        ("VACUUM customers", "OTHER"),
    ],
)
def test_ddl_and_session_statements(statement: str, action: str) -> None:
    shape, _ = analyze(statement)
    assert shape.action == action
    if action == "OTHER":
        assert shape.relations == () and shape.columns == ()


# --------------------------------------------------------------------------------------
# The cache
# --------------------------------------------------------------------------------------


def test_statements_differing_only_in_literals_share_one_cached_shape_object() -> None:
    analyzer = StatementAnalyzer()
    first, first_literals = analyzer.analyze(f"SELECT * FROM customers WHERE phone = '{PHONE}'")
    second, second_literals = analyzer.analyze("SELECT * FROM customers WHERE phone = '13999999999'")
    assert first is second
    assert analyzer.cache_size == 1
    assert first_literals == (f"'{PHONE}'",) and second_literals == ("'13999999999'",)


def test_in_lists_of_different_lengths_share_one_cached_shape() -> None:
    analyzer = StatementAnalyzer()
    shapes = {id(analyzer.analyze(f"SELECT 1 FROM t WHERE id IN ({', '.join('7' * n)})")[0])
              for n in range(1, 30)}
    assert len(shapes) == 1 and analyzer.cache_size == 1


@pytest.mark.parametrize(
    ("seen_first", "then"),
    [
        ("SELECT * FROM t WHERE a = 1_000_000", "SELECT * FROM t WHERE a = 5"),
        ("SELECT * FROM t WHERE a = .5e3", "SELECT * FROM t WHERE a = 5"),
        ("SELECT * FROM t WHERE a = U&'d\\0061t'", "SELECT * FROM t WHERE a = 'x'"),
        ("SELECT * FROM t WHERE a = $q$x$q$", "SELECT * FROM t WHERE a = 'x'"),
        ('SELECT * FROM t WHERE a = "x"', "SELECT * FROM t WHERE a = 'x'"),
    ],
)
def test_cached_shape_does_not_depend_on_which_literal_was_seen_first(
    seen_first: str, then: str
) -> None:
    analyzer = StatementAnalyzer()
    analyzer.analyze(seen_first)
    cached, literals = analyzer.analyze(then)
    fresh, _ = StatementAnalyzer().analyze(then)
    assert cached == fresh
    assert cached.key_column == "a" and cached.key_literal_index == 0 and len(literals) == 1


def test_placeholder_question_marks_are_told_apart_from_literals() -> None:
    # Both fingerprint to '... where a = ? and b = ?', but the literal is a different '?'.
    analyzer = StatementAnalyzer()
    literal_first, literals = analyzer.analyze("SELECT * FROM t WHERE a = 5 AND b = ?")
    assert literal_first.key_column == "a" and literals[literal_first.key_literal_index] == "5"
    placeholder_first, literals = analyzer.analyze("SELECT * FROM t WHERE a = ? AND b = 7")
    assert placeholder_first.fingerprint == literal_first.fingerprint
    assert placeholder_first.key_literal_index is None  # a's value is a placeholder
    paged, literals = analyzer.analyze("SELECT * FROM t WHERE a = ? LIMIT 50 OFFSET 100")
    assert literal_as_int(literals, paged.offset_literal_index) == 100


def test_repeated_literal_free_statement_gives_the_same_answer_each_time() -> None:
    analyzer = StatementAnalyzer()
    statement = "SELECT id, name, phone FROM customers WHERE id = $1"
    answers = [analyzer.analyze(statement) for _ in range(3)]
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][0] is answers[2][0] and answers[0][1] == ()
    without_text_cache = StatementAnalyzer(max_texts=0).analyze(statement)
    assert without_text_cache == answers[0]


def test_repeated_statement_with_literals_returns_its_own_literals() -> None:
    analyzer = StatementAnalyzer(max_texts=2)
    for offset in (0, 50, 0, 50, 100):
        statement = f"SELECT * FROM customers ORDER BY id LIMIT 50 OFFSET {offset}"
        shape, literals = analyzer.analyze(statement)
        assert literal_as_int(literals, shape.offset_literal_index) == offset


def test_text_cache_is_bounded_and_stays_correct_when_emptied() -> None:
    analyzer = StatementAnalyzer(max_texts=3)
    statements = [f"SELECT c{i} FROM t WHERE id = $1" for i in range(10)] * 2
    for statement in statements:
        shape, literals = analyzer.analyze(statement)
        assert shape.fingerprint == statement.lower() and literals == ()
    assert analyzer.cache_size == 10


def test_the_analyzer_keeps_no_literal_value_after_the_call() -> None:
    analyzer = StatementAnalyzer()
    for statement in (
        f"SELECT * FROM customers WHERE phone = '{PHONE}'",
        f"SELECT * FROM customers WHERE phone = '{PHONE}'",  # verbatim repeat
        f"SELECT * FROM customers WHERE id IN ({PHONE}, 1)",
        "SELECT id FROM customers WHERE id = $1",
    ):
        analyzer.analyze(statement)
    kept = list(reachable_strings(analyzer))
    assert kept, "the walk must reach the cached fingerprints"
    assert not [text for text in kept if PHONE in text]


def reachable_strings(root: object):
    """Every str reachable from root through containers and slotted objects."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, str):
            yield obj
        elif isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        else:
            for name in getattr(type(obj), "__slots__", ()):
                if hasattr(obj, name):
                    stack.append(getattr(obj, name))


def test_shape_cache_is_bounded() -> None:
    analyzer = StatementAnalyzer(max_shapes=10)
    for i in range(100):
        analyzer.analyze(f"SELECT c{i} FROM t WHERE id = {i}")
    assert 1 <= analyzer.cache_size <= 10
    shape, literals = analyzer.analyze("SELECT c99 FROM t WHERE id = 5")
    assert shape.columns == (("t", "c99"), ("t", "id")) and literals == ("5",)


def test_key_texts_cached_by_skeleton_keep_no_literal_and_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import detector.sql as sql

    monkeypatch.setattr(sql, "MAX_KEY_TEXTS", 20)
    monkeypatch.setattr(sql, "_KEY_TEXTS", {})
    statement = f"INSERT INTO t (a, b) VALUES ('{PHONE}', 1), ('x', 2)"
    expected = ("insert into t (a, b) values (?)", (f"('{PHONE}', 1), ('x', 2)",))
    assert fingerprint(statement) == expected
    assert fingerprint(statement) == expected  # from the cached key text, literals still its own
    assert fingerprint(statement.replace("'x'", "'y'")) == (expected[0], (f"('{PHONE}', 1), ('y', 2)",))
    for i in range(100):
        fingerprint(f"SELECT c{i} FROM t WHERE id IN ({PHONE}, {i})")
    assert 1 <= len(sql._KEY_TEXTS) <= 20
    assert not [text for text in reachable_strings(sql._KEY_TEXTS) if PHONE in text]


def test_a_statement_sqlglot_cannot_parse_does_not_keep_its_callers_alive() -> None:
    """sqlglot's parser keeps the error it raises: without the frames released, the error's
    cycle held every caller's frame (the pipeline's batch of events) until a cyclic collection."""
    import gc
    import weakref

    class Batch:
        pass

    def caller() -> weakref.ref:
        batch = Batch()
        StatementAnalyzer().analyze("selct status, count(*) from t group by status")
        return weakref.ref(batch)

    gc.disable()
    try:
        assert caller()() is None
    finally:
        gc.enable()


@pytest.mark.parametrize("bad", [0, -1, 1.5, "10", None])
def test_invalid_cache_sizes_are_rejected(bad: object) -> None:
    with pytest.raises(ValueError, match="max_shapes"):
        StatementAnalyzer(max_shapes=bad)  # type: ignore[arg-type]


def test_negative_text_cache_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="max_texts"):
        StatementAnalyzer(max_texts=-1)


# --------------------------------------------------------------------------------------
# literal_as_int
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("42", 42),
        ("-42", -42),
        ("- 42", -42),
        ("'42'", 42),
        (f"'{PHONE}'", int(PHONE)),
        (f"'{ID_CARD_DIGITS}'", int(ID_CARD_DIGITS)),
        ("E'42'", 42),
        ("N'42'", 42),
        ("0x1F", 31),
        ("3.14", None),
        ("1e3", None),
        ("'abc'", None),
        (f"'{ID_CARD}'", None),
        ("B'0101'", None),
        ("X'1F'", None),
        ("_utf8mb4'42'", None),
        ("1, 2, 3", None),
        ("(1, 'a'), (2, 'b')", None),
        ("''", None),
        ("", None),
    ],
)
def test_literal_as_int(literal: str, value: int | None) -> None:
    assert literal_as_int((literal,), 0) == value


@pytest.mark.parametrize("index", [None, -1, 1, 99, "0"])
def test_literal_as_int_out_of_range_is_none(index: object) -> None:
    assert literal_as_int(("42",), index) is None  # type: ignore[arg-type]

"""Statement analysis: fingerprints without literals, shapes the detector relies on."""

from __future__ import annotations

import pytest

from detector.sql import StatementAnalyzer, fingerprint, literal_as_int


def test_fingerprint_is_stable_across_literal_values_and_list_lengths():
    a, _ = fingerprint("SELECT name FROM customers WHERE phone = '13800001234' AND id IN (1, 2, 3)")
    b, _ = fingerprint("select  name from customers where phone = '13999998888' and id in (7)")
    assert a == b


@pytest.mark.parametrize("literal", ["13800001234", "310101199001011234", "O''Brien", "6222021234567890123"])
def test_no_literal_survives_in_the_fingerprint(literal: str):
    text, literals = fingerprint(f"SELECT * FROM customers WHERE x = '{literal}' OR y = 42")
    assert literal not in text and "42" not in text
    assert text.count("?") == len(literals) == 2


def test_point_lookup_key_and_offset_page_are_found():
    analyzer = StatementAnalyzer()
    shape, literals = analyzer.analyze("SELECT name, phone FROM customers WHERE id = 1042")
    assert shape.key_column == "id" and literal_as_int(literals, shape.key_literal_index) == 1042
    page, page_literals = analyzer.analyze("SELECT * FROM customers ORDER BY id LIMIT 500 OFFSET 2500")
    assert page.star_relations == ("customers",) and page.has_limit and not page.has_where
    assert literal_as_int(page_literals, page.offset_literal_index) == 2500


@pytest.mark.parametrize(
    ("statement", "export"),
    [
        ("COPY public.customers (id, name, phone) TO stdout;", True),
        ("COPY (SELECT * FROM customers) TO '/tmp/c.csv' WITH CSV", True),
        ("SELECT * FROM customers INTO OUTFILE '/tmp/c.txt'", True),
        ("COPY customers FROM '/tmp/in.csv'", False),
        ("SELECT count(*) FROM customers", False),
    ],
)
def test_exports_are_recognised(statement: str, export: bool):
    shape, _ = StatementAnalyzer().analyze(statement)
    assert shape.is_export is export


def test_joins_and_ctes_resolve_real_relations_and_aggregates_are_marked():
    analyzer = StatementAnalyzer()
    shape, _ = analyzer.analyze("WITH recent AS (SELECT * FROM orders WHERE created_at > now() - interval '1 day') "
                                "SELECT c.name, c.phone FROM customers c JOIN recent r ON r.customer_id = c.id")
    assert set(shape.relations) == {"orders", "customers"}
    assert ("customers", "phone") in shape.columns
    count, _ = analyzer.analyze("SELECT count(*) FROM customers WHERE city = 'Shanghai'")
    assert count.is_aggregate


def test_repeated_shapes_are_analysed_once():
    analyzer = StatementAnalyzer()
    first, _ = analyzer.analyze("SELECT name FROM customers WHERE id = 1")
    second, _ = analyzer.analyze("SELECT name FROM customers WHERE id = 2")
    assert first is second and analyzer.cache_size == 1


@pytest.mark.parametrize("garbage", ["", ";;;", "SELEC FROM WHERE", "'unterminated", "\x00\x01", "x" * 100_000])
def test_garbage_never_raises(garbage: str):
    shape, literals = StatementAnalyzer().analyze(garbage)
    assert shape.fingerprint_id and isinstance(literals, tuple)


@pytest.mark.parametrize("statement, expected", [
    ("INSERT INTO t VALUES (1, 'a'), (2, 'b')", "insert into t values (?)"),
    ("INSERT INTO t VALUE (1)", "insert into t value (?)"),
    ("SELECT * FROM t WHERE a IN (1, 2) AND b IN ((1, 2), (3, 4))", "select * from t where a in (?) and b in (?)"),
    ("SELECT * FROM t WHERE a = ANY(ARRAY[1, 2])", "select * from t where a = any(array[?])"),
    # only whole words start a list: xin/my_values/subarray are names
    ("SELECT xin (1, 2), my_values (1, 2), subarray [1, 2]", "select xin (?, ?), my_values (?, ?), subarray [?, ?]"),
])
def test_lists_of_literals_collapse_only_after_whole_keywords(statement: str, expected: str):
    assert fingerprint(statement)[0] == expected

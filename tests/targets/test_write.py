"""write_segment: conflicts, keys, constraint failures and dry runs on every database."""

from __future__ import annotations

import pytest

from console.targets.sql import SqlTarget
from console.targets.types import RowWrite, SegmentError

from .helpers import dialect_of, dump, run_sql


def _shop(url: str) -> None:
    fk = "" if dialect_of(url) != "mysql" else " ENGINE=InnoDB"
    run_sql(
        url,
        [
            f"""CREATE TABLE products (id INTEGER PRIMARY KEY, sku VARCHAR(20) NOT NULL UNIQUE,
                 name VARCHAR(50) NOT NULL, price NUMERIC(10, 2), note VARCHAR(50)){fk}""",
            f"""CREATE TABLE order_lines (region VARCHAR(5) NOT NULL, n INTEGER NOT NULL,
                 product_id INTEGER NOT NULL, qty INTEGER NOT NULL,
                 PRIMARY KEY (region, n),
                 FOREIGN KEY (product_id) REFERENCES products (id)){fk}""",
            """INSERT INTO products VALUES (1, 'A-1', 'Apple', 10.50, NULL),
                 (2, 'B-2', 'Banana', 3.00, ''), (3, 'C-3', 'Cherry', NULL, 'x')""",
            """INSERT INTO order_lines VALUES ('eu', 1, 1, 5), ('eu', 2, 2, 1), ('us', 1, 1, 2)""",
        ],
    )


def _row(target: SqlTarget, id_: int) -> dict[str, object] | None:
    return target.read_rows("products", ["id"], [{"id": id_}]).get((id_,))


def test_forward_batch_applies_in_order(target: SqlTarget, target_url: str) -> None:
    _shop(target_url)
    a = _row(target, 1)
    out = target.write_segment(
        "products",
        ["id"],
        [
            RowWrite(1, "update", {"id": 1}, a, {"price": "11.00"}, ("price",)),
            RowWrite(2, "insert", {"id": 4}, None, {"id": 4, "sku": "D-4", "name": "Date"}),
            RowWrite(3, "insert", {"id": 5}, None, {"id": 5, "sku": "E-5", "name": "Elder"}),
            RowWrite(4, "update", {"id": 4}, None, {"note": "same key, later op"}),
            RowWrite(5, "delete", {"id": 3}, {"id": 3, "note": "x"}, None, ("note",)),
        ],
    )
    # op 4 expects the row absent, but op 2 created it within the segment.
    assert [(o.op_no, o.status) for o in out] == [
        (1, "applied"), (2, "applied"), (3, "applied"), (4, "conflict"), (5, "applied"),
    ]  # fmt: skip
    assert out[3].now is not None and out[3].now["sku"] == "D-4"
    rows = target.read_rows("products", ["id"], [{"id": i} for i in range(1, 6)])
    assert sorted(k[0] for k in rows) == [1, 2, 4, 5]
    assert rows[(1,)]["price"] in ("11.00", 11)
    assert rows[(4,)]["note"] is None and rows[(4,)]["price"] is None


def test_conflicts_leave_rows_untouched(target: SqlTarget, target_url: str) -> None:
    _shop(target_url)
    before = dump(target_url, "products")
    a, b = _row(target, 1), _row(target, 2)
    assert a is not None and b is not None
    out = target.write_segment(
        "products",
        ["id"],
        [
            # expect differs (someone changed the price since)
            RowWrite(1, "update", {"id": 1}, {**a, "price": "9.99"}, {"price": "1.00"}),
            # expect None, but the row exists
            RowWrite(2, "insert", {"id": 2}, None, {"id": 2, "sku": "B-2", "name": "x"}),
            # the row is gone
            RowWrite(3, "delete", {"id": 9}, {"id": 9}, None),
            RowWrite(4, "update", {"id": 9}, None, {"name": "ghost"}),
            # NULL vs empty string are different values
            RowWrite(5, "update", {"id": 2}, {**b, "note": None}, {"note": "n"}),
        ],
    )
    assert [o.status for o in out] == ["conflict"] * 5
    assert out[0].now == a
    assert out[2].now is None
    assert dump(target_url, "products") == before


def test_compare_by_meaning(target: SqlTarget, target_url: str) -> None:
    _shop(target_url)
    out = target.write_segment(
        "products",
        ["id"],
        [
            # 10.5 == "10.50" in a NUMERIC column; NULL == NULL (NULL-safe)
            RowWrite(1, "update", {"id": "1"}, {"price": 10.5, "note": None}, {"note": "ok"}),
            RowWrite(2, "update", {"id": 2}, {"price": "3", "note": ""}, {"note": "ok"}),
        ],
    )
    assert [o.status for o in out] == ["applied", "applied"]


def test_composite_key(target: SqlTarget, target_url: str) -> None:
    _shop(target_url)
    keys = [{"region": "eu", "n": 1}, {"region": "us", "n": 1}, {"region": "us", "n": 2}]
    rows = target.read_rows("order_lines", ["region", "n"], keys)
    assert set(rows) == {("eu", 1), ("us", 1)}
    eu1 = rows[("eu", 1)]
    out = target.write_segment(
        "order_lines",
        ["region", "n"],
        [
            RowWrite(1, "update", {"region": "eu", "n": 1}, eu1, {"qty": 6}),
            RowWrite(2, "delete", {"region": "us", "n": 1}, rows[("us", 1)], None),
            RowWrite(3, "insert", {"region": "us", "n": 2}, None,
                     {"region": "us", "n": 2, "product_id": 2, "qty": 1}),
        ],
    )  # fmt: skip
    assert [o.status for o in out] == ["applied"] * 3
    after = target.read_rows("order_lines", ["region", "n"], keys)
    assert set(after) == {("eu", 1), ("us", 2)}
    assert after[("eu", 1)]["qty"] == 6
    assert (
        target.read_rows("order_lines", ["region", "n"], [{"region": "eu", "n": 2}])[("eu", 2)][
            "qty"
        ]
        == 1
    )


def test_unique_business_key(target: SqlTarget, target_url: str) -> None:
    _shop(target_url)
    found = target.read_rows("products", ["sku"], [{"sku": "B-2"}, {"sku": "Z-9"}])
    assert list(found) == [("B-2",)]
    out = target.write_segment(
        "products",
        ["sku"],
        [
            RowWrite(1, "update", {"sku": "B-2"}, found[("B-2",)], {"price": "3.50"}),
            RowWrite(2, "insert", {"sku": "Z-9"}, None, {"id": 9, "sku": "Z-9", "name": "Z"}),
        ],
    )
    assert [o.status for o in out] == ["applied", "applied"]
    assert _row(target, 2) is not None and _row(target, 9) is not None


def test_many_keys_are_chunked(target: SqlTarget, target_url: str) -> None:
    _shop(target_url)
    n = 1200
    inserts = [
        RowWrite(i, "insert", {"id": 100 + i}, None,
                 {"id": 100 + i, "sku": f"S-{i}", "name": "bulk", "price": f"{i}.25"})
        for i in range(n)
    ]  # fmt: skip
    assert {o.status for o in target.write_segment("products", ["id"], inserts)} == {"applied"}
    found = target.read_rows("products", ["id"], [{"id": 100 + i} for i in range(n + 5)])
    assert len(found) == n
    updates = [
        RowWrite(i, "update", {"id": 100 + i}, found[(100 + i,)], {"note": "bulk"})
        for i in range(n)
    ]
    assert {o.status for o in target.write_segment("products", ["id"], updates)} == {"applied"}


def test_foreign_key_violation_writes_nothing(target: SqlTarget, target_url: str) -> None:
    _shop(target_url)
    before = dump(target_url, "order_lines", "region, n")
    writes = [
        RowWrite(1, "update", {"region": "eu", "n": 1}, None, {"qty": 1}),  # conflict
        RowWrite(2, "insert", {"region": "eu", "n": 3}, None,
                 {"region": "eu", "n": 3, "product_id": 1, "qty": 1}),
        RowWrite(3, "insert", {"region": "eu", "n": 4}, None,
                 {"region": "eu", "n": 4, "product_id": 42, "qty": 1}),
        RowWrite(4, "insert", {"region": "eu", "n": 5}, None,
                 {"region": "eu", "n": 5, "product_id": 2, "qty": 1}),
    ]  # fmt: skip
    with pytest.raises(SegmentError) as err:
        target.write_segment("order_lines", ["region", "n"], writes)
    assert err.value.op_no == 3
    assert "foreign key" in err.value.message.lower()
    assert dump(target_url, "order_lines", "region, n") == before


def test_type_error_is_a_segment_error(target: SqlTarget, target_url: str) -> None:
    _shop(target_url)
    before = dump(target_url, "products")
    a = _row(target, 1)
    writes = [
        RowWrite(1, "update", {"id": 1}, a, {"note": "fine"}),
        RowWrite(2, "update", {"id": 2}, None, {"name": None}),  # conflict: not written
        RowWrite(3, "update", {"id": 3}, _row(target, 3), {"name": None}),  # NOT NULL
    ]
    with pytest.raises(SegmentError) as err:
        target.write_segment("products", ["id"], writes)
    assert err.value.op_no == 3
    assert dump(target_url, "products") == before
    with pytest.raises(SegmentError, match="column 'nope' does not exist") as err:
        target.write_segment("products", ["id"], [RowWrite(7, "update", {"id": 1}, a, {"nope": 1})])
    assert err.value.op_no == 7


def test_dry_run_changes_nothing(target: SqlTarget, target_url: str) -> None:
    _shop(target_url)
    before = (dump(target_url, "products"), dump(target_url, "order_lines", "region, n"))
    a = _row(target, 1)
    writes = [
        RowWrite(1, "update", {"id": 1}, a, {"price": "99.99", "note": "dry"}),
        RowWrite(2, "insert", {"id": 7}, None, {"id": 7, "sku": "G-7", "name": "Grape"}),
        RowWrite(3, "delete", {"id": 3}, _row(target, 3), None),
        RowWrite(4, "update", {"id": 2}, {"price": "0"}, {"price": "1"}),
    ]
    out = target.write_segment("products", ["id"], writes, dry_run=True)
    assert [o.status for o in out] == ["applied", "applied", "applied", "conflict"]
    assert (dump(target_url, "products"), dump(target_url, "order_lines", "region, n")) == before
    # The same segment for real gives the same outcomes.
    assert target.write_segment("products", ["id"], writes) == out
    assert dump(target_url, "products") != before[0]


def test_dry_run_reports_constraint_failures(target: SqlTarget, target_url: str) -> None:
    _shop(target_url)
    before = dump(target_url, "products")
    a = _row(target, 1)
    writes = [RowWrite(1, "delete", {"id": 1}, a, None)]  # referenced by lines
    with pytest.raises(SegmentError) as err:
        target.write_segment("products", ["id"], writes, dry_run=True)
    assert err.value.op_no == 1
    assert dump(target_url, "products") == before


def test_empty_segment(target: SqlTarget, target_url: str) -> None:
    _shop(target_url)
    assert target.write_segment("products", ["id"], []) == []


@pytest.mark.parametrize("action", ["CASCADE", "SET NULL"])
def test_a_delete_that_would_cascade_is_refused(
    target: SqlTarget, target_url: str, action: str
) -> None:
    """ON DELETE CASCADE / SET NULL would write rows of another table that no journal holds:
    such a delete is refused (the segment fails, nothing written) while dependents exist."""
    engine = "" if dialect_of(target_url) != "mysql" else " ENGINE=InnoDB"
    run_sql(
        target_url,
        [
            f"CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR(20)){engine}",
            f"""CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER,
                 FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE {action}){engine}""",
            "INSERT INTO customers VALUES (1, 'Ann'), (2, 'Bob'), (3, 'Cy')",
            "INSERT INTO orders VALUES (10, 1), (11, 1), (12, 3)",
        ],
    )
    gone = {"id": 2, "name": "Bob"}
    before = (dump(target_url, "customers"), dump(target_url, "orders"))
    with pytest.raises(SegmentError, match=f"orders\\(customer_id\\) ON DELETE {action}") as err:
        target.write_segment(
            "customers",
            ["id"],
            [
                RowWrite(1, "delete", {"id": 2}, gone, None),
                RowWrite(2, "delete", {"id": 1}, {"id": 1, "name": "Ann"}, None),
            ],
        )
    assert err.value.op_no == 2  # the row with dependents, named
    assert (dump(target_url, "customers"), dump(target_url, "orders")) == before
    out = target.write_segment("customers", ["id"], [RowWrite(1, "delete", {"id": 2}, gone, None)])
    assert [o.status for o in out] == ["applied"]  # no dependents: deleted as asked

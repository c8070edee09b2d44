"""A sale line's fields are declared once (the ``sale_lines`` columns of the edge model) and the
INSERT, its parameter rows and the dicts read back are derived from them; the wire, the device
answer's schema and the sale built at checkout agree with that declaration."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from edge.auth.service import Principal
from edge.checkout import sale_lines, sales
from edge.checkout.carts import CartHead, CartLineRow, CartView
from edge.checkout.models import SaleLine
from edge.checkout.payment_rules import PaymentRequest
from edge.checkout.schemas import SaleLineOut
from edge.pricing.cart_pricing import CartTotals, PricedLine
from sync import contract

T0 = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def test_the_fields_are_the_model_columns_less_the_placement_with_price_renamed():
    columns = [column.name for column in SaleLine.__table__.columns]
    assert columns[:3] == ["id", "sale_id", "position"]
    assert (columns[0], *columns[3:]) == sale_lines.COLUMNS
    assert (
        tuple("price" if name == "piece_price" else name for name in sale_lines.COLUMNS)
        == sale_lines.FIELDS
    )


def test_a_stored_line_is_the_wire_line_field_for_field_in_order():
    assert tuple(contract.SaleLine.model_fields) == sale_lines.FIELDS


def test_a_stored_line_is_the_device_answer_line_field_for_field_in_order():
    assert tuple(SaleLineOut.model_fields) == sale_lines.FIELDS


def line(n: int, *, weight_g: int | None = None) -> dict[str, object]:
    values = {
        "id": f"line-{n}",
        "sku": f"SKU{n}",
        "name": f"Product {n}",
        "barcode": f"69000000000{n}",
        "quantity": n,
        "weight_g": weight_g,
        "unit_price": 100 * n,
        "price": 90 * n,
        "subtotal": 90 * n * n,
        "discount": n,
        "tax": 2 * n,
        "total": 90 * n * n - n,
        "tax_rate_bp": 1300,
        "returned_quantity": 0,
        "refunded_amount": 0,
    }
    assert tuple(values) == sale_lines.FIELDS
    return values


def test_rows_written_read_back_as_the_same_line_dicts(tmp_path):
    path = tmp_path / "lines.db"
    engine = create_engine(f"sqlite:///{path}")
    SaleLine.__table__.create(engine)
    written = [line(2), line(1, weight_g=512), line(3)]

    raw = sqlite3.connect(path)
    raw.executemany(sale_lines.INSERT_SALE_LINE, sale_lines.line_rows("sale-1", written))
    raw.executemany(sale_lines.INSERT_SALE_LINE, sale_lines.line_rows("sale-2", [line(4)]))
    raw.commit()
    positions = raw.execute(
        "SELECT position, id, piece_price FROM sale_lines WHERE sale_id = 'sale-1' ORDER BY id"
    ).fetchall()
    raw.close()
    assert positions == [(2, "line-1", 90), (1, "line-2", 180), (3, "line-3", 270)]

    with Session(engine) as session:
        read = sale_lines.line_dicts(session.execute(sale_lines.select_lines("sale-1")))
    assert read == written
    assert [list(d) for d in read] == [list(sale_lines.FIELDS)] * 3
    engine.dispose()


def test_a_line_row_is_the_sale_then_the_position_then_the_fields():
    (row,) = sale_lines.line_rows("sale-1", [line(5)])
    assert row == ("sale-1", 1, *line(5).values())
    with pytest.raises(KeyError):
        sale_lines.line_rows("sale-1", [{"id": "incomplete"}])


def test_the_sale_built_at_checkout_has_its_lines_in_the_declared_shape():
    cart = CartHead(
        id="cart-1",
        channel="kiosk",
        status="open",
        device_id="kiosk-1",
        currency="CNY",
        approved_by=None,
        approved_at=None,
        approved_lines=None,
        created_at=T0,
        updated_at=T0,
    )
    rows = [
        CartLineRow("cl-1", 1, "MILK1L", "Milk", "piece", False, "6900", 2, None, 1250, 1250, 900),
        CartLineRow("cl-2", 2, "APPLE", "Apples", "kg", False, "2012", 1, 512, 1580, 809, 900),
    ]
    priced = [PricedLine(2500, 0, 206, 2500), PricedLine(809, 9, 66, 800)]
    view = CartView(cart, rows, priced, CartTotals(3309, 9, 272, 3300))
    shape = sales._sale_shape(
        view, Principal("kiosk-1", "kiosk"), [PaymentRequest("cash", 3300)], [None], 0, T0
    )
    assert [tuple(d) for d in shape["lines"]] == [sale_lines.FIELDS] * 2
    first, second = shape["lines"]
    assert (first["price"], first["unit_price"], first["total"]) == (1250, 1250, 2500)
    assert (second["weight_g"], second["price"], second["discount"]) == (512, 809, 9)
    assert (first["returned_quantity"], first["refunded_amount"]) == (0, 0)
    # The event the write records carries these lines as they are.
    doc = contract.SaleDoc.model_validate(shape)
    assert [d.model_dump() for d in doc.lines] == shape["lines"]


@pytest.mark.parametrize(
    ("quantity", "weight_g", "units"), [(3, None, 3), (1, 512, 512), (2, 250, 500)]
)
def test_stock_units_are_pieces_or_grams(quantity, weight_g, units):
    assert sale_lines.stock_units(quantity, weight_g) == units

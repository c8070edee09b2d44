"""Receipt text for 58 mm and 80 mm thermal printers: layout, amounts and column widths."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wcwidth import wcswidth

from edge.checkout.receipts import (
    Receipt,
    ReceiptLine,
    ReceiptPayment,
    display_width,
    render_text,
)
from shared.money import format_amount

RICE = "东北大米 5kg 特级 珍珠米 新米上市"
LONG_ASCII = (
    "Super extra long imported Belgian dark chocolate with roasted hazelnuts and sea salt, "
    "family pack, limited edition"
)
UNBROKEN = "X" * 120


def _columns(text: str) -> int:
    """Independent column count: wide/fullwidth are 2, combining and format characters 0."""
    total = 0
    for ch in text:
        if unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        total += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return total


def _line(
    name: str,
    *,
    quantity: int = 1,
    weight_g: int | None = None,
    unit_price: int = 1000,
    discount: int = 0,
    tax_rate_bp: int = 1300,
) -> ReceiptLine:
    # Weighed lines are priced per kilogram, rounded half up to a minor unit.
    subtotal = quantity * unit_price if weight_g is None else (weight_g * unit_price + 500) // 1000
    return ReceiptLine(
        name=name,
        quantity=quantity,
        weight_g=weight_g,
        unit_price=unit_price,
        subtotal=subtotal,
        discount=discount,
        total=subtotal - discount,
        tax_rate_bp=tax_rate_bp,
    )


def _receipt(*lines: ReceiptLine, **overrides: object) -> Receipt:
    subtotal = sum(line.subtotal for line in lines)
    discount = sum(line.discount for line in lines)
    total = subtotal - discount
    fields: dict[str, object] = {
        "store_name": "Aisle 静安店",
        "store_id": "store-01",
        "sale_number": "S-000123",
        "sale_id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        "sold_at": datetime(2024, 5, 1, 14, 3, 5, tzinfo=UTC),
        "timezone": "Asia/Shanghai",
        "currency": "CNY",
        "lines": lines,
        "subtotal": subtotal,
        "discount": discount,
        "tax": 0,
        "total": total,
        "payments": (ReceiptPayment("cash", total + 9),),
        "change": 9,
    }
    fields.update(overrides)
    return Receipt(**fields)  # type: ignore[arg-type]


def _assert_fits(text: str, width: int) -> None:
    assert text.endswith("\n")
    for row in text.splitlines():
        assert _columns(row) <= width, f"{_columns(row)} > {width}: {row!r}"
        assert display_width(row) <= width
        # wcwidth is a second, independent opinion (and newer Unicode tables); -1 would mean a
        # control character slipped through.
        assert 0 <= wcswidth(row) <= width, f"wcwidth {wcswidth(row)}: {row!r}"
        # Nothing a printer would choke on or lay out unpredictably.
        assert all(ch == " " or ch.isprintable() for ch in row), repr(row)


@pytest.fixture
def sample() -> Receipt:
    return _receipt(
        _line(RICE, quantity=2, unit_price=5990, discount=1000, tax_rate_bp=900),
        _line("Bananas", weight_g=512, unit_price=2580, tax_rate_bp=900),
        _line(LONG_ASCII, unit_price=4590),
        _line(UNBROKEN, unit_price=100),
        tax=1449,
    )


# --- widths -------------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [32, 48])
def test_every_line_fits(sample: Receipt, width: int) -> None:
    text = render_text(sample, width)
    _assert_fits(text, width)
    # The wide layout uses the extra room rather than printing a 32-column receipt.
    widest_name = max(display_width(row) for row in text.splitlines() if "chocolate" in row)
    assert widest_name > 32 if width == 48 else widest_name <= 32


@pytest.mark.parametrize("width", [31, 40, 0, 80])
def test_other_widths_are_refused(sample: Receipt, width: int) -> None:
    with pytest.raises(ValueError):
        render_text(sample, width)


def test_default_width_is_58mm(sample: Receipt) -> None:
    assert render_text(sample) == render_text(sample, 32)


def test_display_width_counts_chinese_as_two_columns() -> None:
    assert display_width("abc") == 3
    assert display_width("大米") == 4
    assert display_width("\uff21\uff22") == 4  # fullwidth Latin "AB"
    assert display_width("e\u0301") == 1  # combining accent takes no column
    assert display_width(RICE) == 33


@pytest.mark.parametrize("width", [32, 48])
def test_chinese_name_is_wrapped_without_losing_characters(width: int) -> None:
    text = render_text(_receipt(_line(RICE)), width)
    _assert_fits(text, width)
    # Every character of the name is printed, in order, even when it wraps (33 columns > 32).
    printed = "".join(text.split())
    assert RICE.replace(" ", "") in printed


def test_chinese_name_wraps_between_words_at_32_columns() -> None:
    rows = render_text(_receipt(_line(RICE)), 32).splitlines()
    assert "东北大米 5kg 特级 珍珠米" in rows
    assert "新米上市" in rows


def test_wide_characters_are_never_split_when_a_line_breaks() -> None:
    # 17 wide characters and no spaces: 34 columns, must break between characters at 32.
    name = "特级珍珠米新米上市东北大米五公斤装"
    rows = render_text(_receipt(_line(name)), 32).splitlines()
    assert name[:16] in rows
    assert name[16:] in rows


@pytest.mark.parametrize("width", [32, 48])
def test_very_long_names_are_truncated_with_an_ellipsis(width: int) -> None:
    name = " ".join(["chocolate"] * 40)
    text = render_text(_receipt(_line(name)), width)
    _assert_fits(text, width)
    assert text.count("chocolate") < 40
    assert "..." in text


@pytest.mark.parametrize("width", [32, 48])
def test_huge_amounts_still_fit(width: int) -> None:
    line = _line("Gold bar", quantity=3, unit_price=10**40)
    text = render_text(_receipt(line), width)
    _assert_fits(text, width)
    assert "".join(text.split()).count(str(3 * 10**38)) >= 1


_NAME_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from("东北大米特级珍珠米新米上市ＡＢＣ한국어カタカナ😀\u0301\u200b\ufe0f \t\n"),
    ),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(
    names=st.lists(_NAME_TEXT, min_size=1, max_size=4),
    store_name=_NAME_TEXT,
    footer=_NAME_TEXT,
    method=_NAME_TEXT,
    width=st.sampled_from([32, 48]),
    quantity=st.integers(min_value=1, max_value=10**6),
    unit_price=st.integers(min_value=0, max_value=10**12),
    weight_g=st.one_of(st.none(), st.integers(min_value=1, max_value=10**7)),
)
def test_any_receipt_fits(
    names: list[str],
    store_name: str,
    footer: str,
    method: str,
    width: int,
    quantity: int,
    unit_price: int,
    weight_g: int | None,
) -> None:
    lines = [
        _line(name, quantity=quantity, unit_price=unit_price, weight_g=weight_g) for name in names
    ]
    receipt = _receipt(
        *lines,
        store_name=store_name,
        footer=footer,
        payments=(ReceiptPayment(method, 10**9),),
        store_id=store_name[:20],
        sale_number=footer[:30],
    )
    text = render_text(receipt, width)
    _assert_fits(text, width)
    total = next(row for row in text.splitlines() if row.startswith("TOTAL CNY"))
    assert total.endswith(" " + format_amount(receipt.total, "CNY"))


# --- content ------------------------------------------------------------------------------------


def test_header_shows_store_sale_and_local_time(sample: Receipt) -> None:
    rows = render_text(sample, 32).splitlines()
    assert rows[0].strip() == "Aisle 静安店"
    # Centred: "Aisle 静安店" takes 12 columns, so 10 spaces go before it.
    assert rows[0] == " " * 10 + "Aisle 静安店"
    assert rows[1].startswith("Store") and rows[1].endswith("store-01")
    assert rows[2].startswith("Sale") and rows[2].endswith("S-000123")
    # 14:03 UTC is 22:03 in Shanghai.
    assert rows[3].startswith("2024-05-01 22:03:05")
    assert rows[3].endswith("UTC+08:00")


def test_totals_appear_right_aligned(sample: Receipt) -> None:
    rows = render_text(sample, 48).splitlines()
    subtotal = next(r for r in rows if r.startswith("Subtotal"))
    total = next(r for r in rows if r.startswith("TOTAL CNY"))
    discount = [r for r in rows if r.startswith("Discount")]
    change = next(r for r in rows if r.startswith("Change"))
    cash = next(r for r in rows if r.startswith("Cash"))
    assert subtotal.endswith(" 179.91") and len(subtotal) == 48
    assert discount == ["Discount" + " " * 34 + "-10.00"]
    assert total.endswith(" 169.91") and len(total) == 48
    assert cash.endswith(" 170.00")
    assert change.endswith(" 0.09")


def test_quantity_line_and_line_discount(sample: Receipt) -> None:
    rows = render_text(sample, 32).splitlines()
    qty = rows.index(next(r for r in rows if r.startswith("  2 x 59.90")))
    assert rows[qty].endswith(" 119.80")
    assert rows[qty + 1].startswith("  Discount") and rows[qty + 1].endswith(" -10.00")


def test_weighed_line_shows_kilograms_and_price_per_kg(sample: Receipt) -> None:
    rows = render_text(sample, 32).splitlines()
    weighed = next(r for r in rows if "kg @" in r)
    assert weighed.startswith("  0.512 kg @ 25.80/kg")
    assert weighed.endswith(" 13.21")  # 0.512 kg x 25.80 = 13.2096
    assert rows[rows.index(weighed) - 1] == "Bananas"


@pytest.mark.parametrize(
    ("weight_g", "shown"), [(5, "0.005 kg"), (1000, "1.000 kg"), (12345, "12.345 kg")]
)
def test_weights_keep_three_decimals(weight_g: int, shown: str) -> None:
    text = render_text(_receipt(_line("Apples", weight_g=weight_g, unit_price=1000)), 32)
    assert f"  {shown} @ 10.00/kg" in text


def test_tax_breakdown_per_rate() -> None:
    receipt = _receipt(
        _line("Rice", quantity=1, unit_price=1000, tax_rate_bp=1300),  # 1000*13/113 = 115.04
        _line("Milk", quantity=1, unit_price=1090, tax_rate_bp=900),  # 1090*9/109 = 90
        _line("Candy", quantity=1, unit_price=333, tax_rate_bp=825),  # 333*825/10825 = 25.38
        _line("Stamps", quantity=1, unit_price=500, tax_rate_bp=0),
        tax=230,
    )
    rows = render_text(receipt, 32).splitlines()
    vat = [r for r in rows if r.startswith("VAT")]
    assert [r.split(" incl.")[0] for r in vat] == ["VAT 13%", "VAT 9%", "VAT 8.25%"]
    assert vat[0].endswith(" 1.15")
    assert vat[1].endswith(" 0.90")
    assert vat[2].endswith(" 0.25")
    assert next(r for r in rows if r.startswith("Tax total")).endswith(" 2.30")


def test_tax_is_rounded_per_line_on_the_discounted_total() -> None:
    # Each line's total is 0.04; its tax 4 * 13/113 = 0.46 minor units rounds to 0. Summing the
    # gross first (12 -> 1.38 -> 1) or taxing the third line before its discount (104 -> 12)
    # would print a different figure.
    receipt = _receipt(
        _line("Gum", unit_price=4, tax_rate_bp=1300),
        _line("Gum", unit_price=4, tax_rate_bp=1300),
        _line("Gum", unit_price=104, discount=100, tax_rate_bp=1300),
    )
    vat = next(r for r in render_text(receipt, 32).splitlines() if r.startswith("VAT"))
    assert vat.startswith("VAT 13% incl.")
    assert vat.endswith(" 0.00")


def test_payments_and_footer(sample: Receipt) -> None:
    receipt = replace(
        sample,
        payments=(ReceiptPayment("wechat_pay", 20000), ReceiptPayment("cash", 3440)),
        footer="谢谢惠顾\nKeep this receipt for returns within 7 days",
    )
    rows = render_text(receipt, 32).splitlines()
    assert any(r.startswith("Wechat pay") and r.endswith(" 200.00") for r in rows)
    assert any(r.startswith("Cash") and r.endswith(" 34.40") for r in rows)
    assert rows[-2].strip() == "Keep this receipt for returns"
    assert rows[-1].strip() == "within 7 days"
    assert any(r.strip() == "谢谢惠顾" for r in rows)


def test_jpy_has_no_decimals() -> None:
    receipt = _receipt(_line("Onigiri", quantity=2, unit_price=150), currency="JPY")
    text = render_text(receipt, 32)
    assert "  2 x 150" in text
    assert next(r for r in text.splitlines() if r.startswith("TOTAL JPY")).endswith(" 300")


# --- data ---------------------------------------------------------------------------------------


def test_to_dict_is_json_ready(sample: Receipt) -> None:
    data = sample.to_dict()
    again = json.loads(json.dumps(data))
    assert again == data
    assert data["sold_at"] == "2024-05-01T14:03:05+00:00"
    assert data["lines"][1]["weight_g"] == 512
    assert data["lines"][0]["name"] == RICE
    assert data["payments"] == [{"method": "cash", "amount": data["total"] + 9}]
    assert data["total"] == 16991


def test_naive_sale_time_is_refused() -> None:
    with pytest.raises(ValueError):
        _receipt(_line("Rice"), sold_at=datetime(2024, 5, 1, 14, 3))


def test_unknown_timezone_is_refused() -> None:
    with pytest.raises(ValueError):
        _receipt(_line("Rice"), timezone="Mars/Olympus_Mons")


def test_float_money_is_refused() -> None:
    with pytest.raises(TypeError):
        ReceiptLine("Rice", 1, None, 10.5, 1050, 0, 1050, 1300)  # type: ignore[arg-type]


@pytest.mark.parametrize("ch", ["䷀", "䷿"])
def test_a_character_newer_tables_call_wide_counts_two_columns(ch):
    """Python's own tables (Unicode 14 on 3.11) call these one column; newer ones (wcwidth's)
    call them two. A receipt counts the wider: a line may end a column early, never overflow."""
    assert display_width(ch) == 2 == wcswidth(ch)
    receipt = _receipt(payments=(ReceiptPayment(ch * 3, 1_000_000_000),))
    _assert_fits(render_text(receipt, 32), 32)

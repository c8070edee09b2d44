"""The sale receipt as plain text for thermal printers: 58 mm (32 columns) and 80 mm (48 columns).

Every output line fits the paper in *display columns*, not characters: East Asian wide and
fullwidth characters (most Chinese product names) take two columns, combining marks none. Long
names wrap between words, or between characters where there are no spaces, and a character is
never split; names past :data:`MAX_NAME_LINES` lines are cut with ``...``. Amounts are printed
without a currency symbol (the total row names the currency) using only ASCII, so the layout does
not depend on the printer's code page.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from wcwidth import wcwidth

from shared.money import currency_exponent, format_amount, tax_included

__all__ = [
    "MAX_NAME_LINES",
    "WIDTHS",
    "Receipt",
    "ReceiptLine",
    "ReceiptPayment",
    "display_width",
    "render_text",
]

#: Columns per line of the supported paper widths: 58 mm and 80 mm rolls.
WIDTHS = (32, 48)
#: A product name longer than this many printed lines is truncated; paper is not free.
MAX_NAME_LINES = 3
_INDENT = "  "
_ELLIPSIS = "..."
# Variation selectors can turn a one-column symbol into a two-column emoji on some renderers;
# printers cannot show them anyway, so they are dropped rather than risk an overflow.
_DROPPED = {chr(c) for c in range(0xFE00, 0xFE10)}


def _require_int(name: str, value: object) -> None:
    # Money and quantities are ints; a float here means a bug upstream, not a rounding choice.
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class ReceiptLine:
    """One sold product: ``subtotal`` is before the line's ``discount``, ``total`` after it.

    For weighed lines ``weight_g`` is set and ``unit_price`` is per kilogram.
    """

    name: str
    quantity: int
    weight_g: int | None
    unit_price: int
    subtotal: int
    discount: int
    total: int
    tax_rate_bp: int
    # (the offer's name, its share of this line) for each offer the line took, in order.
    offers: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        for field in ("quantity", "unit_price", "subtotal", "discount", "total", "tax_rate_bp"):
            _require_int(field, getattr(self, field))
        if self.weight_g is not None:
            _require_int("weight_g", self.weight_g)
        object.__setattr__(self, "offers", tuple(self.offers))

    def to_dict(self) -> dict[str, Any]:
        """This line as plain JSON-ready values."""
        return {
            "name": self.name,
            "quantity": self.quantity,
            "weight_g": self.weight_g,
            "unit_price": self.unit_price,
            "subtotal": self.subtotal,
            "discount": self.discount,
            "total": self.total,
            "tax_rate_bp": self.tax_rate_bp,
            "offers": [{"name": name, "amount": amount} for name, amount in self.offers],
        }


@dataclass(frozen=True, slots=True)
class ReceiptPayment:
    """One tender of the sale, e.g. ``cash`` or ``card``, in minor units."""

    method: str
    amount: int

    def __post_init__(self) -> None:
        _require_int("amount", self.amount)

    def to_dict(self) -> dict[str, Any]:
        """This payment as plain JSON-ready values."""
        return {"method": self.method, "amount": self.amount}


@dataclass(frozen=True, slots=True)
class Receipt:
    """Everything printed on a sale receipt; ``sold_at`` is UTC-aware, shown in ``timezone``."""

    store_name: str
    store_id: str
    sale_number: str
    sale_id: str
    sold_at: datetime
    timezone: str
    currency: str
    lines: tuple[ReceiptLine, ...]
    subtotal: int
    discount: int
    tax: int
    total: int
    payments: tuple[ReceiptPayment, ...]
    change: int
    footer: str = "Thank you"
    # (earned, burned, balance after) when the sale was for a member.
    points: tuple[int, int, int | None] | None = None
    # (the offer's name, what it took off) for every offer the sale took, in the order they ran.
    offers: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        # Fail when the receipt is built, not half-way through printing it.
        if self.sold_at.tzinfo is None or self.sold_at.utcoffset() is None:
            raise ValueError("sold_at must be timezone-aware")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {self.timezone!r}") from None
        currency_exponent(self.currency)
        for field in ("subtotal", "discount", "tax", "total", "change"):
            _require_int(field, getattr(self, field))
        # Lists would make the frozen receipt mutable through the back door.
        object.__setattr__(self, "lines", tuple(self.lines))
        object.__setattr__(self, "payments", tuple(self.payments))
        object.__setattr__(self, "offers", tuple(self.offers))

    def to_dict(self) -> dict[str, Any]:
        """The receipt as JSON-ready values; ``sold_at`` as an ISO 8601 string with its offset."""
        return {
            "store_name": self.store_name,
            "store_id": self.store_id,
            "sale_number": self.sale_number,
            "sale_id": self.sale_id,
            "sold_at": self.sold_at.isoformat(),
            "timezone": self.timezone,
            "currency": self.currency,
            "lines": [line.to_dict() for line in self.lines],
            "subtotal": self.subtotal,
            "discount": self.discount,
            "tax": self.tax,
            "total": self.total,
            "payments": [payment.to_dict() for payment in self.payments],
            "change": self.change,
            "offers": [{"name": name, "amount": amount} for name, amount in self.offers],
            "points": None
            if self.points is None
            else dict(zip(("earned", "burned", "balance_after"), self.points, strict=True)),
            "footer": self.footer,
        }


def render_text(receipt: Receipt, width: int = 32) -> str:
    """The receipt as printer-ready text, ``width`` (32 or 48) display columns per line at most.

    Lines are joined with ``\\n`` and the text ends with a newline.
    """
    if width not in WIDTHS:
        raise ValueError(f"receipt width must be one of {WIDTHS}, got {width!r}")
    money = receipt.currency
    rule = "-" * width
    out: list[str] = []

    out.extend(_centred(receipt.store_name, width))
    out.extend(_pair("Store", receipt.store_id, width))
    out.extend(_pair("Sale", receipt.sale_number, width))
    local = receipt.sold_at.astimezone(ZoneInfo(receipt.timezone))
    out.extend(_pair(local.strftime("%Y-%m-%d %H:%M:%S"), _utc_offset(local), width))
    out.append(rule)

    for line in receipt.lines:
        out.extend(_name_lines(line.name, width))
        if line.weight_g is not None:
            detail = f"{_kg(line.weight_g)} kg @ {format_amount(line.unit_price, money)}/kg"
        else:
            detail = f"{line.quantity} x {format_amount(line.unit_price, money)}"
        out.extend(_pair(detail, format_amount(line.subtotal, money), width, indent=_INDENT))
        # Each offer by its name; a discount no offer explains as "Discount".
        explained = sum(amount for _, amount in line.offers)
        for name, amount in (*line.offers, ("Discount", line.discount - explained)):
            if amount:
                out.extend(_pair(name, format_amount(-amount, money), width, indent=_INDENT))
    out.append(rule)

    out.extend(_pair("Subtotal", format_amount(receipt.subtotal, money), width))
    if receipt.discount:
        out.extend(_pair("Discount", format_amount(-receipt.discount, money), width))
    out.extend(_pair(f"TOTAL {money}", format_amount(receipt.total, money), width))
    taxes = _tax_by_rate(receipt.lines)
    for rate_bp, tax in taxes.items():
        label = f"VAT {_percent(rate_bp)} incl."
        out.extend(_pair(label, format_amount(tax, money), width))
    if len(taxes) > 1:
        out.extend(_pair("Tax total incl.", format_amount(receipt.tax, money), width))
    out.append(rule)

    for payment in receipt.payments:
        out.extend(
            _pair(_method_label(payment.method), format_amount(payment.amount, money), width)
        )
    out.extend(_pair("Change", format_amount(receipt.change, money), width))
    out.append(rule)
    if receipt.points is not None:
        earned, burned, balance = receipt.points
        out.extend(_pair("Points earned", f"+{earned}", width))
        if burned:
            out.extend(_pair("Points spent", f"-{burned}", width))
        if balance is not None:
            out.extend(_pair("Points balance", str(balance), width))
        out.append(rule)

    for paragraph in receipt.footer.splitlines():
        out.extend(_centred(paragraph, width))
    return "\n".join(out) + "\n"


def display_width(text: str) -> int:
    """Columns ``text`` takes on a terminal or printer: wide/fullwidth 2, combining marks 0."""
    if text.isascii():
        # Amounts, labels and most names: one column a character (control characters never
        # get this far, ``_clean`` turned them into spaces).
        return len(text)
    return sum(_char_width(ch) for ch in text)


@functools.lru_cache(maxsize=4096)
def _char_width(ch: str) -> int:
    if unicodedata.category(ch) in ("Mn", "Me", "Cf") or ch in _DROPPED:
        return 0
    ours = 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    # Python's tables lag Unicode (3.11: Unicode 14); wcwidth's are newer and call some of
    # those characters wide (the Yijing hexagrams, U+4DC0-4DFF). A printer may use either:
    # the wider count means a line can end a column early, never spill over.
    return max(ours, wcwidth(ch))


def _clean(text: str) -> str:
    """One printable line: NFC, control characters and line breaks as spaces, invisibles gone."""
    if text.isascii() and text.isprintable():
        return " ".join(text.split())
    kept: list[str] = []
    for ch in unicodedata.normalize("NFC", text):
        category = unicodedata.category(ch)
        if category in ("Cc", "Zl", "Zp") or ch.isspace():
            kept.append(" ")
        elif category in ("Cf", "Cs", "Co", "Cn") or ch in _DROPPED:
            # Format, surrogate, private-use and unassigned code points: a printer shows them as
            # boxes at best, and their width is anyone's guess.
            continue
        else:
            kept.append(ch)
    return " ".join("".join(kept).split())


def _clusters(text: str) -> list[str]:
    # A combining mark stays with the character before it, so wrapping never separates them.
    clusters: list[str] = []
    for ch in text:
        if clusters and _char_width(ch) == 0:
            clusters[-1] += ch
        else:
            clusters.append(ch)
    return clusters


def _wrap(text: str, width: int) -> list[str]:
    """Greedy word wrap to ``width`` columns; words wider than a line break between characters."""
    lines: list[str] = []
    current = ""
    for word in _clean(text).split(" "):
        if not word:
            continue
        candidate = f"{current} {word}" if current else word
        if display_width(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
            current = ""
        if display_width(word) <= width:
            current = word
            continue
        for cluster in _clusters(word):
            if display_width(current + cluster) > width:
                lines.append(current)
                current = ""
            current += cluster
    if current:
        lines.append(current)
    return lines


def _truncate(text: str, width: int) -> str:
    """``text`` cut to fit ``width`` columns together with a trailing ``...``."""
    room = width - len(_ELLIPSIS)
    kept = ""
    for cluster in _clusters(text):
        if display_width(kept + cluster) > room:
            break
        kept += cluster
    return kept.rstrip() + _ELLIPSIS


def _name_lines(name: str, width: int) -> list[str]:
    lines = _wrap(name, width) or ["(no name)"]
    if len(lines) > MAX_NAME_LINES:
        lines = lines[:MAX_NAME_LINES]
        lines[-1] = _truncate(lines[-1], width)
    return lines


def _centred(text: str, width: int) -> list[str]:
    centred: list[str] = []
    for line in _wrap(text, width):
        centred.append(" " * ((width - display_width(line)) // 2) + line)
    return centred


def _pair(left: str, right: str, width: int, indent: str = "") -> list[str]:
    """``left`` and ``right`` on one line, right flush; wrapped over more lines if too wide."""
    lefts = [indent + part for part in _wrap(left, width - len(indent))] or [""]
    rights = _wrap(right, width)
    if len(rights) == 1 and display_width(lefts[-1]) + 1 + display_width(rights[0]) <= width:
        last = lefts.pop()
        gap = width - display_width(last) - display_width(rights[0])
        return [*lefts, last + " " * gap + rights[0]]
    return [*lefts, *(" " * (width - display_width(part)) + part for part in rights)]


def _tax_by_rate(lines: Iterable[ReceiptLine]) -> dict[int, int]:
    """Tax contained in the lines' totals, per rate (highest first), rounded line by line."""
    taxes: dict[int, int] = {}
    for line in lines:
        if line.tax_rate_bp:
            taxes[line.tax_rate_bp] = taxes.get(line.tax_rate_bp, 0) + tax_included(
                line.total, line.tax_rate_bp
            )
    return dict(sorted(taxes.items(), reverse=True))


def _percent(rate_bp: int) -> str:
    """1300 -> ``13%``, 825 -> ``8.25%``, 850 -> ``8.5%``."""
    whole, hundredths = divmod(rate_bp, 100)
    if hundredths == 0:
        return f"{whole}%"
    return f"{whole}.{hundredths:02d}".rstrip("0") + "%"


def _kg(weight_g: int) -> str:
    """Grams as kilograms with three decimals: 512 -> ``0.512``."""
    sign = "-" if weight_g < 0 else ""
    kilos, grams = divmod(abs(weight_g), 1000)
    return f"{sign}{kilos}.{grams:03d}"


def _method_label(method: str) -> str:
    return method.replace("_", " ").capitalize() or "Payment"


def _utc_offset(local: datetime) -> str:
    """``UTC+08:00``; whole minutes only, as historical zones can carry seconds."""
    offset = local.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{minutes:02d}"

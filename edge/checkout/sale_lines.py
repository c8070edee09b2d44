"""A sale line's fields, declared once: the ``sale_lines`` columns of :class:`SaleLine`.

The sale as the store hands it out (the checkout answer, ``GET /sales/{id}``, the
``sale.completed`` event) carries each line as a dict of :data:`FIELDS`. They are the table's
columns in declaration order, less the two that place a line in its sale (``sale_id``,
``position``), and with ``piece_price`` under its name on the wire, ``price``. The INSERT the
checkout runs, its parameter rows and the dicts read back are all derived from them here, so a
column added to the model is written and read without another list to update.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Select, select

from edge.checkout.models import SaleLine

__all__ = [
    "COLUMNS",
    "FIELDS",
    "INSERT_SALE_LINE",
    "line_dicts",
    "line_rows",
    "select_lines",
    "stock_units",
]

#: Columns that place a line in its sale rather than describe the line.
_PLACEMENT = ("sale_id", "position")
#: Stored columns whose field in the sale has another name.
_FIELD_OF_COLUMN = {"piece_price": "price"}

#: The line's own columns of ``sale_lines``, in the model's order.
COLUMNS: tuple[str, ...] = tuple(
    column.name for column in SaleLine.__table__.columns if column.name not in _PLACEMENT
)
#: The keys of a line in the sale dict, in the same order as :data:`COLUMNS`.
FIELDS: tuple[str, ...] = tuple(_FIELD_OF_COLUMN.get(name, name) for name in COLUMNS)

#: Parameters: the sale id, the line's 1-based position, then :data:`FIELDS` in order.
INSERT_SALE_LINE = (
    f"INSERT INTO sale_lines ({', '.join((*_PLACEMENT, *COLUMNS))}) "
    f"VALUES ({', '.join('?' * (len(_PLACEMENT) + len(COLUMNS)))})"
)

# One C-level call per row: the write path builds these for every line of every sale.
_values = itemgetter(*FIELDS)


def line_rows(sale_id: str, lines: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """Parameter rows of :data:`INSERT_SALE_LINE` for a sale's line dicts, in their order."""
    # Concatenation, not unpacking: a third faster, and this runs for every line sold.
    numbered = enumerate(lines, 1)
    return [(sale_id, position) + _values(line) for position, line in numbered]  # noqa: RUF005


def select_lines(sale_id: str) -> Select[Any]:
    """The line columns of a sale's lines, in their order on the receipt."""
    table = SaleLine.__table__
    return (
        select(*(table.c[name] for name in COLUMNS))
        .where(table.c.sale_id == sale_id)
        .order_by(table.c.position)
    )


def line_dicts(rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """Rows of :func:`select_lines` as the sale's line dicts."""
    return [dict(zip(FIELDS, row, strict=True)) for row in rows]


def stock_units(quantity: int, weight_g: int | None) -> int:
    """Stock units a line moves: pieces, or grams for weighed goods."""
    return quantity * weight_g if weight_g is not None else quantity

"""A sale's member and the points it moved, as the sale dict and the sale event carry them."""

from __future__ import annotations

from typing import Any

#: The tender name of points spent on a sale.
POINTS_TENDER = "points"


def points_tender(value: int, hold_id: str | None) -> list[dict[str, Any]]:
    """The sale's points as a tender (none when no points were spent), listed first among its
    payments: what they paid, under the cloud's hold (None: spent offline)."""
    return [{"method": POINTS_TENDER, "amount": value, "reference": hold_id}] if value else []


def member_points(
    member_id: str, *, earned: int, burned: int, spend: int, hold_id: str | None
) -> dict[str, Any]:
    """A sale's member and the points it moved, as the sale event carries them. ``hold_id``:
    the cloud's hold the burned points came from; None when the store burned them offline (or
    burned none), which the cloud counts against the member's balance as it finds it."""
    return {
        "id": member_id,
        "earned": earned,
        "burned": burned,
        "spend": spend,
        "hold_id": hold_id,
        "offline": hold_id is None,
    }

"""A sale's member and the points it moved, as the sale dict and the sale event carry them."""

from __future__ import annotations

from typing import Any


def member_points(member_id: str, *, earned: int, burned: int, spend: int) -> dict[str, Any]:
    """A sale's member and the points it moved, as the sale event carries them. Offline:
    the store holds no points at the cloud yet."""
    return {
        "id": member_id,
        "earned": earned,
        "burned": burned,
        "spend": spend,
        "hold_id": None,
        "offline": True,
    }

"""Ids made offline: UUIDv7, unique without coordination and roughly time-ordered."""

from __future__ import annotations

import uuid6


def new_id() -> str:
    """A new UUIDv7 as its canonical 36-character string."""
    return str(uuid6.uuid7())

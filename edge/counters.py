"""Gap-free counters: the outbox's sequence and the receipt numbers.

A counter row is bumped inside the caller's write transaction. Every write transaction holds
the store's write lock and SQLite's from its first statement (``BEGIN IMMEDIATE``), so numbers
are handed out one writer at a time, and a rolled-back transaction takes its number with it.
"""

from __future__ import annotations

from edge.db import Tx, execute

_BUMP = (
    "INSERT INTO counters (name, value) VALUES (?, 1) "
    "ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value"
)


def next_value(tx: Tx, name: str) -> int:
    """The next value of counter ``name`` (1, 2, 3, ...), inside the caller's transaction."""
    return int(execute(tx, _BUMP, (name,))[0])

"""What each statement of a push reads, counted by PostgreSQL itself.

Ingest must stay flat as a store's history grows: no statement of a batch may read rows in
proportion to the store's history, or the chain's. PostgreSQL counts, per table and per index,
the rows a backend reads (``pg_stat_get_xact_tuples_returned``: heap rows from sequential scans,
entries from index scans, rows a filter then throws away included). The difference around a
statement is what that statement read, whatever plan it ran, foreign-key checks included; the
difference around the whole transaction also covers what ran outside SQLAlchemy (``COPY``).

Run the pushes on a connection with ``plan_cache_mode = force_generic_plan`` and no table
statistics to count what a long-lived connection runs once psycopg has prepared its statements
(after the fifth run of each), on a database that was never analyzed (autovacuum off, a restore,
``pg_upgrade``). The ingest benchmark ends with this guard and a test runs it on a small history.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from psycopg.pq import TransactionStatus
from sqlalchemy import Engine, event

#: Rows read so far by this backend from the tables and indexes of the current schema.
ROWS_READ_SQL = """
SELECT COALESCE(SUM(pg_stat_get_xact_tuples_returned(c.oid)), 0)::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'i', 'p')
"""
#: The plan cache mode of a connection that has prepared its statements.
GENERIC_PLANS = "-c plan_cache_mode=force_generic_plan"


@dataclass(frozen=True)
class StatementReads:
    """One statement as the driver got it, and the rows it read."""

    sql: str
    rows_read: int

    @property
    def shape(self) -> str:
        """The statement with its parameters numbered away and lists shortened: one line."""
        text = " ".join(self.sql.split())
        text = re.sub(r"\), \(%\(.*\)(?= ON CONFLICT| RETURNING|$)", "), ...", text)  # rows
        text = re.sub(r"%\(([a-z]+(?:_[a-z]+)*)[_\d]*\)s", r"%(\1)s", text)
        return re.sub(r"(%\(\w+\)s(::\w+)?)(, %\(\w+\)s(::\w+)?)+", r"\1, ...", text)


@dataclass
class TransactionReads:
    """The statements of one transaction and the rows the whole transaction read."""

    statements: list[StatementReads] = field(default_factory=list)
    total: int = 0

    @property
    def outside_statements(self) -> int:
        """Rows read by what ran on the driver directly (``COPY`` and its foreign-key checks)."""
        return self.total - sum(s.rows_read for s in self.statements)


def rows_read(dbapi_connection: Any) -> int | None:
    """The backend's rows read so far (tables and indexes of the current schema); None while
    the transaction is failed (a refused row, before its savepoint is rolled back)."""
    if dbapi_connection.info.transaction_status == TransactionStatus.INERROR:
        return None
    row = dbapi_connection.execute(ROWS_READ_SQL).fetchone()
    return int(row[0])


@contextmanager
def counting_reads(engine: Engine) -> Iterator[list[TransactionReads]]:
    """Count the rows each statement on ``engine`` reads while the block runs (PostgreSQL):
    one :class:`TransactionReads` per transaction, in order."""
    transactions: list[TransactionReads] = []
    starts: dict[int, int] = {}

    def driver(conn: Any) -> Any:
        return conn.connection.driver_connection

    def begin(conn: Any) -> None:
        transactions.append(TransactionReads())
        start = rows_read(driver(conn))
        if start is not None:
            starts[id(conn)] = start

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        conn.info["reads_before"] = rows_read(driver(conn))

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        before, now = conn.info.pop("reads_before", None), rows_read(driver(conn))
        if transactions and before is not None and now is not None:
            transactions[-1].statements.append(StatementReads(statement, now - before))

    def end(conn: Any) -> None:
        start, now = starts.pop(id(conn), None), rows_read(driver(conn))
        if transactions and start is not None and now is not None:
            transactions[-1].total = now - start

    hooks: list[tuple[str, Callable[..., None]]] = [
        ("begin", begin),
        ("before_cursor_execute", before),
        ("after_cursor_execute", after),
        ("commit", end),
        ("rollback", end),
    ]
    for name, hook in hooks:
        event.listen(engine, name, hook)
    try:
        yield transactions
    finally:
        for name, hook in hooks:
            event.remove(engine, name, hook)


@dataclass(frozen=True)
class Finding:
    """A statement (or what ran outside statements) that read more than its bound."""

    what: str
    rows_read: int
    bound: int


def over_bound(reads: TransactionReads, bound: int) -> list[Finding]:
    """What in ``reads`` read more than ``bound`` rows."""
    found = [Finding(s.shape, s.rows_read, bound) for s in reads.statements if s.rows_read > bound]
    if reads.outside_statements > bound:
        found.append(Finding("COPY (outside statements)", reads.outside_statements, bound))
    return found

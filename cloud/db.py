"""The cloud database: PostgreSQL in production (psycopg 3), SQLite as the embedded default.

The same models and migrations run on both. What differs is set up here once:

* PostgreSQL: a pooled engine with pre-ping (a restarted server costs one retry, not an error
  per pooled connection); transactions are READ COMMITTED and take row locks where they need
  order (``SELECT ... FOR UPDATE`` on a store's sync state).
* SQLite: WAL, foreign keys on, a busy timeout, and writes that begin with ``BEGIN IMMEDIATE``,
  so writers are serialised from their first statement and never fail to upgrade a lock.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import psycopg
from sqlalchemy import BigInteger, Engine, Integer, String, Table, create_engine, insert, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import DeclarativeBase, Session, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

from shared.db import UnitOfWork, UTCDateTime, named_metadata, sqlite_engine, unit_of_work

SQLITE_BUSY_TIMEOUT_MS = 30_000


#: An id as :func:`shared.ids.new_id` writes it: a UUID in lowercase, hyphenated text.
CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: The namespace of the name-based keys of ids that are not UUIDs (fixed: keys are stored).
ID_KEY_NAMESPACE = uuid.UUID("5b0e4a52-3c8e-4d55-9a51-1f3f5e0c2a77")


def id_key(text: str) -> str:
    """The UUID an id made offline is stored under: a canonical UUID is its own key; any other
    text (the wire allows 1-64 characters, though no Aisle store makes such ids) has its
    name-based UUID, version 3 (MD5), which PostgreSQL can compute too (migration 0003).
    Every id has one key, so a lookup by id finds what was stored under it."""
    if CANONICAL_UUID.fullmatch(text):
        return text
    return str(uuid.uuid3(ID_KEY_NAMESPACE, text))


class UuidText(TypeDecorator[str]):
    """An id as PostgreSQL's native ``uuid`` (16 bytes, against 37 or more for its text, in
    every row and index entry), and as text on SQLite; Python sees the canonical text on both.
    Values are stored under :func:`id_key`."""

    impl = String(64)
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.UUID(as_uuid=False))
        return dialect.type_descriptor(String(64))

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else id_key(value)


class Base(DeclarativeBase):
    metadata = named_metadata()
    type_annotation_map = {datetime: UTCDateTime()}


# Shared column types.
#: Autoincrementing 64-bit key: BIGINT on PostgreSQL, the rowid alias on SQLite.
BigIntKey = BigInteger().with_variant(Integer(), "sqlite")
StoreId = Annotated[str, mapped_column(String(32))]
Uuid = Annotated[str, mapped_column(UuidText())]


def make_engine(url: str, *, immediate: bool = True, pool_size: int = 5) -> Engine:
    """An engine on ``url``; on SQLite ``immediate`` makes every transaction a writer."""
    if url.startswith("sqlite"):
        return sqlite_engine(
            url,
            immediate=immediate,
            pool_size=pool_size,
            max_overflow=10,
            busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS,
        )
    return create_engine(url, pool_size=pool_size, max_overflow=10, pool_pre_ping=True)


@dataclass
class Database:
    """The cloud's engines: writers and readers (one and the same pool on PostgreSQL)."""

    url: str
    writer: Engine
    reader: Engine

    @classmethod
    def open(cls, url: str) -> Database:
        writer = make_engine(url, immediate=True)
        reader = make_engine(url, immediate=False) if url.startswith("sqlite") else writer
        return cls(url, writer, reader)

    @property
    def is_postgresql(self) -> bool:
        return self.writer.dialect.name == "postgresql"

    def dispose(self) -> None:
        self.writer.dispose()
        if self.reader is not self.writer:
            self.reader.dispose()

    @contextmanager
    def write(self) -> Iterator[UnitOfWork]:
        """A write transaction that rolls back unless ``commit()`` is called."""
        with unit_of_work(self.writer) as uow:
            yield uow

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction; nothing it does is committed."""
        with Session(self.reader, autoflush=False) as session:
            try:
                yield session
            finally:
                session.rollback()

    @contextmanager
    def read_statements(self) -> Iterator[Session]:
        """Reads outside a transaction: each statement sees its own snapshot, and the read
        costs no ``BEGIN`` or ``ROLLBACK`` round trip. For the busiest reads that are one
        statement (a member lookup at a store's checkout); anything that needs two statements
        to agree takes :meth:`read`."""
        with (
            self.reader.connect().execution_options(isolation_level="AUTOCOMMIT") as conn,
            Session(bind=conn, autoflush=False) as session,
        ):
            yield session


def table_of(model: Any) -> Table:
    """The Core table of the mapped class ``model``."""
    table: Table = model.__table__
    return table


#: From this many rows of one table at once, PostgreSQL gets them by COPY.
COPY_MIN_ROWS = 50


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (each with the same keys) into ``table`` in the session's transaction:
    by COPY on PostgreSQL from :data:`COPY_MIN_ROWS` rows, else by a Core insert (several times
    cheaper than the ORM's bulk path)."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql" and len(rows) >= COPY_MIN_ROWS:
        copy_rows(session, table, rows)
    else:
        session.execute(insert(table), list(rows))


def copy_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """``COPY ... FROM STDIN`` in the session's transaction: a batch's thousands of rows go in
    as one stream instead of one INSERT each (the database's work per row drops several
    times). Values pass through the columns' own bind processing, as an INSERT's would; a
    refused row raises the same IntegrityError or DataError an INSERT would."""
    connection = session.connection()
    dialect = connection.dialect
    columns = [c for c in table.columns if any(c.key in row for row in rows[:1])]
    processors = [c.type.bind_processor(dialect) for c in columns]
    names = ", ".join(f'"{c.name}"' for c in columns)
    statement = f'COPY "{table.name}" ({names}) FROM STDIN'
    driver = connection.connection.driver_connection
    assert driver is not None
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                values = [row.get(c.key) for c in columns]
                copy.write_row(
                    [p(v) if p is not None else v for p, v in zip(processors, values, strict=True)]
                )
    except psycopg.errors.IntegrityError as exc:
        raise IntegrityError(statement, None, exc) from None
    except (psycopg.errors.DataError, ValueError) as exc:
        raise DataError(statement, None, exc) from None


def new_ids(session: Session, table: Table, count: int) -> list[int] | None:
    """``count`` ids from the sequence of ``table``'s ``id`` on PostgreSQL, in one statement,
    so that rows that others point at can go in by COPY; None on SQLite, which has no
    sequence (its inserts answer the ids they made)."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    if count == 0:
        return []
    ids = session.execute(
        text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"),
        {"table": table.name, "n": count},
    ).scalars()
    return sorted(int(i) for i in ids)

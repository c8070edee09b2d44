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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from sqlalchemy import DateTime, Engine, MetaData, String, create_engine, event
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Session, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SQLITE_BUSY_TIMEOUT_MS = 30_000


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out; naive values are refused."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: cloud times are UTC-aware")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


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
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


# Shared column types.
StoreId = Annotated[str, mapped_column(String(32))]
Uuid = Annotated[str, mapped_column(UuidText())]


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # Hand transaction control to the "begin" listeners (pysqlite's own is unreliable).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def make_engine(url: str, *, immediate: bool = True, pool_size: int = 5) -> Engine:
    """An engine on ``url``; on SQLite ``immediate`` makes every transaction a writer."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            pool_size=pool_size,
            max_overflow=10,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
        event.listen(engine, "connect", _configure_sqlite)
        begin_sql = "BEGIN IMMEDIATE" if immediate else "BEGIN"

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql(begin_sql)

        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=10, pool_pre_ping=True)


class UnitOfWork:
    """One use case's transaction: the session plus an explicit ``commit()``."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.committed = False

    def commit(self) -> None:
        self.session.commit()
        self.committed = True


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
        with Session(self.writer, expire_on_commit=False, autoflush=False) as session:
            uow = UnitOfWork(session)
            try:
                yield uow
            finally:
                if not uow.committed:
                    session.rollback()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction; nothing it does is committed."""
        with Session(self.reader, autoflush=False) as session:
            try:
                yield session
            finally:
                session.rollback()


def utcnow() -> datetime:
    return datetime.now(UTC)

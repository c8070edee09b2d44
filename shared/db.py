"""What the store's and the cloud's databases have in common: constraint names, UTC datetimes,
the unit of work, and an SQLite engine set up the same way on both sides.

An SQLite connection gets ``journal_mode=WAL`` (readers never block the writer), a
``synchronous`` level, ``foreign_keys=ON`` and a ``busy_timeout``, then whatever pragmas its side
adds. pysqlite's own transaction handling is switched off: every transaction starts with the
engine's ``BEGIN`` (``BEGIN IMMEDIATE`` for a writer, so two writers never both read and then fail
to upgrade their lock). Each side keeps its own numbers, pools and locking in its ``db`` module.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def named_metadata() -> MetaData:
    """A metadata whose constraints and indexes are named by :data:`NAMING_CONVENTION` (the
    migrations name them the same way)."""
    return MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out; naive values are refused."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: stored times are UTC-aware")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UnitOfWork:
    """One use case's transaction: the session plus an explicit ``commit()``."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.committed = False

    def commit(self) -> None:
        self.session.commit()
        self.committed = True


@contextmanager
def unit_of_work(engine: Engine) -> Iterator[UnitOfWork]:
    """A write transaction on ``engine`` that rolls back unless ``commit()`` is called."""
    with Session(engine, expire_on_commit=False, autoflush=False) as session:
        uow = UnitOfWork(session)
        try:
            yield uow
        finally:
            if not uow.committed:
                session.rollback()


def configure_sqlite(
    dbapi_connection: Any, *, synchronous: str, busy_timeout_ms: int, pragmas: Sequence[str] = ()
) -> None:
    """Set up a new SQLite connection (see the module docstring); ``pragmas`` run last."""
    # Hand transaction control to the engine's "begin" listener (pysqlite's own is unreliable).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    for pragma in pragmas:
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def sqlite_engine(
    url: str,
    *,
    immediate: bool,
    pool_size: int,
    max_overflow: int,
    busy_timeout_ms: int,
    synchronous: str = "FULL",
    pragmas: Sequence[str] = (),
) -> Engine:
    """A pooled engine on the SQLite database at ``url``, each connection set up by
    :func:`configure_sqlite`; ``immediate`` makes every transaction a writer."""
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=False,
        connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
    )

    def configure(dbapi_connection: Any, _record: Any) -> None:
        configure_sqlite(
            dbapi_connection,
            synchronous=synchronous,
            busy_timeout_ms=busy_timeout_ms,
            pragmas=pragmas,
        )

    event.listen(engine, "connect", configure)
    begin_sql = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql(begin_sql)

    return engine

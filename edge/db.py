"""The store database: SQLite configured on purpose, the declarative base and the unit of work.

SQLite settings and why:

* ``journal_mode=WAL``: readers never block the one writer, so scans go on during a checkout.
* ``synchronous=FULL``: a commit is on disk before the device hears "paid"; a power cut right
  after a sale does not lose it. It costs an fsync per transaction, which the checkout benchmark
  includes. Cart edits (scans) commit with ``synchronous=NORMAL`` instead: in WAL mode that
  survives any crash of the server process and loses at most the last scans on a power cut
  (the shopper scans them again), and the next sale's fsync makes them durable too. Scans are
  the busiest write of the store; this takes an fsync off each one.
* ``foreign_keys=ON`` and ``busy_timeout``: integrity enforced; writers queue, not fail.
* Writes begin with ``BEGIN IMMEDIATE`` so two writers never both read and then fail to upgrade
  their lock (SQLITE_BUSY mid-transaction); reads begin with a plain deferred ``BEGIN``.
* Writers queue on a lock (a thread lock inside the process, ``flock`` on a file beside the
  database across processes) before they begin. SQLite's own busy handler waits by sleeping and
  polling, with sleeps growing to 100 ms: under a Saturday rush that turns a 2 ms scan into a
  200 ms one. The store's lock is tried every 2 ms at most, and a write that waits longer than
  ``WRITE_LOCK_TIMEOUT_S`` is refused (503 ``store_busy``) and logged instead of hanging.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, cast

from sqlalchemy import Engine, String
from sqlalchemy.orm import DeclarativeBase, Session, mapped_column

from shared.db import UnitOfWork, UTCDateTime, named_metadata, sqlite_engine, unit_of_work

BUSY_TIMEOUT_MS = 10_000
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024
#: The longest a write waits for the store's write lock before it is refused (503): longer than
#: any transaction the store runs (a large catalog import), far shorter than a device's patience.
WRITE_LOCK_TIMEOUT_S = 10.0
CACHE_KIB = 512


class Base(DeclarativeBase):
    metadata = named_metadata()
    type_annotation_map = {datetime: UTCDateTime()}


# Shared column types.
IdPk = Annotated[str, mapped_column(String(36), primary_key=True)]
Id = Annotated[str, mapped_column(String(36))]


def make_engine(
    path: Path, *, immediate: bool, synchronous: str = "FULL", pool_size: int = 8
) -> Engine:
    """An engine on the SQLite file at ``path``; ``immediate`` makes every transaction a writer."""
    return sqlite_engine(
        f"sqlite:///{path}",
        immediate=immediate,
        pool_size=pool_size,
        max_overflow=16,
        busy_timeout_ms=BUSY_TIMEOUT_MS,
        synchronous=synchronous,
        pragmas=(
            # SQLite's default page cache is 2 MB per connection; the OS caches the file anyway,
            # and a store server keeps a dozen connections per worker, so keep each one's small.
            f"cache_size=-{CACHE_KIB}",
            # After a checkpoint the WAL file is cut back to this size rather than kept at its
            # peak.
            f"journal_size_limit={WAL_SIZE_LIMIT_BYTES}",
        ),
    )


class WriteLockTimeout(TimeoutError):
    """The store's write lock was not granted in time: some writer is stuck holding it."""


class WriteLock:
    """One writer at a time across the threads and processes that share a database file.

    Waiting is bounded (``timeout_s``): a writer stuck inside its transaction must not hang
    every device of every worker behind it. Threads of a process queue on a thread lock (woken
    at once when it is let go); only the thread at the head of that queue waits on the
    cross-process ``flock``, trying it without blocking and sleeping briefly between tries
    (50 microseconds at first, never more than 2 ms), so the wait can end.
    """

    def __init__(self, path: Path, timeout_s: float = WRITE_LOCK_TIMEOUT_S) -> None:
        self._path = path
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        self._pid = -1
        self.timeout_s = timeout_s

    def _descriptor(self) -> int:
        # A forked worker must open its own descriptor: flock locks belong to the open file.
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    def _flock(self, fd: int, deadline: float) -> None:
        pause = 0.00005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WriteLockTimeout(self._path) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.002)

    @contextmanager
    def held(self) -> Iterator[None]:
        deadline = time.monotonic() + self.timeout_s
        if not self._thread_lock.acquire(timeout=self.timeout_s):
            raise WriteLockTimeout(self._path)
        try:
            fd = self._descriptor()
            self._flock(fd, deadline)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def close(self) -> None:
        with self._thread_lock:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None


@dataclass
class Database:
    """The two engines on one store file: writers (BEGIN IMMEDIATE) and readers (BEGIN)."""

    path: Path
    writer: Engine
    reader: Engine
    write_lock: WriteLock
    cart_writer: Engine

    @classmethod
    def open(cls, path: Path, *, write_lock_timeout_s: float = WRITE_LOCK_TIMEOUT_S) -> Database:
        return cls(
            path,
            # Writers take turns on the write lock: one or two connections each is plenty.
            make_engine(path, immediate=True, pool_size=2),
            make_engine(path, immediate=False),
            WriteLock(path.with_name(path.name + ".writelock"), write_lock_timeout_s),
            make_engine(path, immediate=True, synchronous="NORMAL", pool_size=2),
        )

    def dispose(self) -> None:
        self.writer.dispose()
        self.reader.dispose()
        self.cart_writer.dispose()
        self.write_lock.close()

    @contextmanager
    def write(self, *, durable: bool = True) -> Iterator[UnitOfWork]:
        """A write transaction that rolls back unless ``commit()`` is called.

        ``durable=False`` is for cart edits only (see the module docstring). Keep the
        transaction short: it holds the store's one write lock. Nothing slow (a payment
        provider, a network call) belongs inside.
        """
        engine = self.writer if durable else self.cart_writer
        with self.write_lock.held(), unit_of_work(engine) as uow:
            yield uow

    @contextmanager
    def raw_write(self, *, durable: bool = True) -> Iterator[RawTransaction]:
        """Like :meth:`write`, on a bare cursor; see :class:`RawTransaction`."""
        engine = self.writer if durable else self.cart_writer
        with self.write_lock.held(), _raw(engine, "BEGIN IMMEDIATE") as tx:
            yield tx

    @contextmanager
    def raw_read(self) -> Iterator[RawTransaction]:
        """A read snapshot on a bare cursor."""
        with _raw(self.reader, "BEGIN") as tx:
            yield tx

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only snapshot; nothing it does is committed.

        Closing (not rolling back) the session leaves loaded rows usable after the block; the
        pool rolls the connection's transaction back when it takes it back.
        """
        with Session(self.reader, autoflush=False) as session:
            yield session


def to_sql_time(moment: datetime) -> str:
    """The text form SQLAlchemy's SQLite DateTime stores: naive UTC with microseconds."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime refused: store times are UTC-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def from_sql_time(text: str | None) -> datetime | None:
    """Parse what :func:`to_sql_time` (or SQLAlchemy) wrote back into an aware UTC datetime."""
    return None if text is None else datetime.fromisoformat(text).replace(tzinfo=UTC)


class RawTransaction:
    """A transaction on a bare ``sqlite3`` cursor, for the few hottest paths (scans, checkout).

    SQLAlchemy costs tens of microseconds per statement; a scan runs about ten statements and a
    checkout dozens, all while holding the store's one write lock. These paths use plain SQL on
    the pooled connection instead. It rolls back unless :meth:`commit` is called.
    """

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self.cur = cursor
        self.committed = False

    def one(self, sql: str, params: Any = ()) -> Any:
        return self.cur.execute(sql, params).fetchone()

    def all(self, sql: str, params: Any = ()) -> list[Any]:
        return self.cur.execute(sql, params).fetchall()

    def run(self, sql: str, params: Any = ()) -> None:
        self.cur.execute(sql, params)

    def commit(self) -> None:
        self.cur.execute("COMMIT")
        self.committed = True


@contextmanager
def _raw(engine: Engine, begin: str) -> Iterator[RawTransaction]:
    proxy = engine.raw_connection()
    try:
        cursor = cast(sqlite3.Cursor, proxy.cursor())
        cursor.row_factory = sqlite3.Row
        cursor.execute(begin)
        tx = RawTransaction(cursor)
        try:
            yield tx
        finally:
            if not tx.committed:
                cursor.execute("ROLLBACK")
            cursor.close()
    finally:
        proxy.close()


#: A write transaction of either kind: an ORM unit of work's session or a bare cursor.
Tx = Session | RawTransaction


def execute(tx: Tx, sql: str, params: tuple[Any, ...]) -> Any:
    """Run plain SQL in ``tx``; returns the first row, if the statement returns any."""
    if isinstance(tx, RawTransaction):
        return tx.one(sql, params)
    result = tx.connection().exec_driver_sql(sql, params)
    return result.first() if result.returns_rows else None

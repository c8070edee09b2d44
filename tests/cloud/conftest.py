"""The cloud suite runs on both databases: SQLite files and a real PostgreSQL.

PostgreSQL runs when ``AISLE_TEST_POSTGRES_URL`` is set (e.g.
``postgresql+psycopg://postgres@127.0.0.1:5432/test``): the suite creates a fresh, uniquely named
database on that server, migrates it once, empties it before each test and drops it at the end.
Without the variable the PostgreSQL half is skipped, unless ``CI`` is set: then a missing or
unreachable PostgreSQL fails the run, it never skips.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from cloud.db import Base, Database
from cloud.migrations import upgrade
from tests.cloud.harness import Cloud, make_cloud

PG_ENV = "AISLE_TEST_POSTGRES_URL"
BACKENDS = ["sqlite", "postgresql"]


def _admin_conninfo(url: str) -> tuple[str, str]:
    """(libpq conninfo of the server's maintenance database, SQLAlchemy URL template)."""
    parsed = make_url(url)
    conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    return conninfo, parsed.render_as_string(hide_password=False)


@contextmanager
def _new_postgres_database() -> Iterator[str]:
    """A new, empty database on the test server (``PG_ENV``), dropped afterwards."""
    url = os.environ.get(PG_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {PG_ENV} is not: the PostgreSQL suite must run on CI")
        pytest.skip(f"PostgreSQL half skipped: set {PG_ENV} to run it")
    conninfo, _ = _admin_conninfo(url)
    name = f"aisle_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(conninfo, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL at {PG_ENV} is unreachable: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated, dropped afterwards."""
    with _new_postgres_database() as test_url:
        db = Database.open(test_url)
        upgrade(db.writer)
        db.dispose()
        yield test_url


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """A PostgreSQL database of this test's own, not migrated: for tests of migrations, and of
    plans, which the other tests' rows and statistics must not touch."""
    with _new_postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database, copied for each test (migrating costs more than copying)."""
    path = tmp_path_factory.mktemp("cloud-template") / "cloud.sqlite3"
    db = Database.open(f"sqlite:///{path}")
    upgrade(db.writer)
    db.dispose()
    return path


def _empty_postgres(url: str) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty cloud database on each backend."""
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
        _empty_postgres(url)
        return url
    template: Path = request.getfixturevalue("sqlite_template")
    target = tmp_path / "cloud.sqlite3"
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


@pytest.fixture
def cloud(database_url: str, tmp_path: Path) -> Iterator[Cloud]:
    """The cloud app on a fresh database, with a clock the test moves."""
    c = make_cloud(tmp_path / "cloud", database_url)
    yield c
    c.close()

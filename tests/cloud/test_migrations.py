"""The migrations build exactly the models' schema, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import cloud.models  # noqa: F401
from cloud.app import SchemaOutOfDate, build_context
from cloud.db import Base, Database
from cloud.migrations import current_revision, head_revision, upgrade
from cloud.settings import load_settings


def test_migrations_and_models_agree(database_url):
    db = Database.open(database_url)
    try:
        upgrade(db.writer)  # already at head: a second run is a no-op
        assert current_revision(db.writer) == head_revision()
        with db.writer.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
        assert diff == []
    finally:
        db.dispose()


def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path):
    db = Database.open(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    upgrade(db.writer)
    with db.writer.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    db.dispose()


def test_the_service_refuses_an_unmigrated_database(tmp_path):
    settings = load_settings(None, environ={}, overrides={"data_dir": str(tmp_path)})
    with pytest.raises(SchemaOutOfDate, match="aisle cloud migrate"):
        build_context(settings)

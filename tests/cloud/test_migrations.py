"""The migrations build exactly the models' schema, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

import cloud.models  # noqa: F401
from cloud.app import SchemaOutOfDate, build_context
from cloud.db import Base, Database, id_key
from cloud.migrations import current_revision, head_revision, upgrade
from cloud.settings import load_settings
from shared.ids import new_id
from tests.cloud.harness import T0


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


LEGACY_SALE = """
INSERT INTO sales (id, store_id, seq, number, channel, currency, subtotal, discount, tax, total,
                   paid, change, item_count, payments, created_at, received_at)
VALUES (:id, 'S001', :seq, :id, 'kiosk', 'CNY', 100, 0, 9, 100, 100, 0, 1, '[]', :at, :at)
"""
LEGACY_LINE = """
INSERT INTO sale_lines (id, sale_id, position, sku, name, barcode, quantity, unit_price, price,
                        subtotal, discount, tax, total, tax_rate_bp)
VALUES (:id, :sale_id, 1, 'SKU1', 'Product 1', '', 1, 100, 100, 100, 0, 9, 100, 900)
"""
LEGACY_EVENT = """
INSERT INTO applied_events (store_id, seq, event_id, type, status, received_at)
VALUES ('S001', :seq, :event_id, 'sale.completed', 'applied', :at)
"""
COLUMN_TYPES = """
SELECT table_name, column_name, data_type FROM information_schema.columns
WHERE table_schema = current_schema()
  AND (table_name, column_name) IN (('applied_events', 'event_id'), ('sales', 'id'),
                                    ('sale_lines', 'id'), ('sale_lines', 'sale_id'))
ORDER BY table_name, column_name
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A database with no schema yet, on each backend."""
    if request.param == "postgresql":
        url: str = request.getfixturevalue("fresh_postgres_url")
        return url
    return f"sqlite:///{tmp_path / 'empty.sqlite3'}"


def test_ids_move_to_native_uuids_under_their_keys(empty_database_url):
    # Ids that are not UUIDs (the wire allows any 64 characters) move to their name-based
    # keys, computed in SQL on PostgreSQL and in Python on SQLite: the same ones.
    db = Database.open(empty_database_url)
    try:
        upgrade(db.writer, "0002")
        events = [new_id(), "evt-2", "Événement 3"]
        lines = [(new_id(), new_id()), ("L-1", "legacy-sale-1")]
        with db.writer.begin() as conn:
            for seq, (line_id, sale_id) in enumerate(lines, start=1):
                conn.execute(text(LEGACY_SALE), {"id": sale_id, "seq": seq, "at": T0})
                conn.execute(text(LEGACY_LINE), {"id": line_id, "sale_id": sale_id})
            for seq, event_id in enumerate(events, start=1):
                conn.execute(text(LEGACY_EVENT), {"seq": seq, "event_id": event_id, "at": T0})
        upgrade(db.writer)
        with db.writer.connect() as conn:
            stored = conn.execute(text("SELECT event_id FROM applied_events ORDER BY seq"))
            assert [str(e) for e in stored.scalars()] == [id_key(e) for e in events]
            assert id_key(events[0]) == events[0]
            stored = conn.execute(
                text("SELECT l.id, l.sale_id FROM sale_lines l JOIN sales s ON s.id = l.sale_id")
            )
            assert sorted((str(i), str(s)) for i, s in stored) == sorted(
                (id_key(i), id_key(s)) for i, s in lines
            )
            if db.is_postgresql:
                assert [t for *_, t in conn.execute(text(COLUMN_TYPES))] == ["uuid"] * 4
    finally:
        db.dispose()


TOKEN = """
INSERT INTO api_tokens (id, role, name, token_hash, created_at)
VALUES (:id, :role, 'tests', :id, :at)
"""


def test_tokens_gain_the_channel_role_and_keep_refusing_others(empty_database_url):
    db = Database.open(empty_database_url)
    try:
        upgrade(db.writer, "0007")
        with db.writer.begin() as conn:
            conn.execute(text(TOKEN), {"id": "hq-1", "role": "hq", "at": T0})
        upgrade(db.writer)
        with db.writer.begin() as conn:
            conn.execute(text(TOKEN), {"id": "shop-1", "role": "channel", "at": T0})
        with pytest.raises(IntegrityError), db.writer.begin() as conn:
            conn.execute(text(TOKEN), {"id": "admin-1", "role": "admin", "at": T0})
        with db.writer.connect() as conn:
            roles = conn.execute(text("SELECT id, role FROM api_tokens ORDER BY id")).all()
            assert [tuple(r) for r in roles] == [("hq-1", "hq"), ("shop-1", "channel")]
    finally:
        db.dispose()

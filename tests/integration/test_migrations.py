from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import edge.models  # noqa: F401
from edge.app import SchemaOutOfDate, build_context
from edge.db import Base, Database
from edge.migrations import HEAD, current_revision, head_revision, upgrade, upgrade_if_behind
from tests.builders import make_settings


def test_migrations_build_exactly_the_models_schema(tmp_path):
    db = Database.open(tmp_path / "s.sqlite3")
    upgrade(db.writer)
    with db.writer.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    db.dispose()
    assert diff == []


def test_upgrade_is_repeatable_and_reaches_head(tmp_path):
    db = Database.open(tmp_path / "s.sqlite3")
    upgrade(db.writer)
    upgrade(db.writer)
    assert current_revision(db.writer) == head_revision()
    db.dispose()


def test_the_head_constant_the_server_checks_is_alembics_head(tmp_path):
    assert head_revision() == HEAD
    db = Database.open(tmp_path / "s.sqlite3")
    assert current_revision(db.writer) is None
    assert upgrade_if_behind(db.writer) == HEAD
    db.dispose()


def test_serving_processes_never_load_the_migration_tooling(tmp_path):
    # The server checks the schema revision itself; alembic, mako and pygments would cost each
    # worker process megabytes. Run in a clean interpreter: this test process has them loaded.
    import subprocess
    import sys

    db = Database.open(tmp_path / "edge.sqlite3")
    upgrade(db.writer)
    db.dispose()
    probe = (
        "import sys\n"
        "from edge.app import build_context\n"
        "from tests.builders import make_settings\n"
        "from pathlib import Path\n"
        f"ctx = build_context(make_settings(Path({str(tmp_path)!r})))\n"
        "print(sorted(m for m in ('alembic', 'mako', 'pygments') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_database_runs_in_wal_with_full_sync_and_foreign_keys(tmp_path):
    db = Database.open(tmp_path / "s.sqlite3")
    upgrade(db.writer)
    with db.writer.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    with db.cart_writer.connect() as conn:
        # Cart edits skip the fsync (WAL + NORMAL); sales and stock keep it.
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    db.dispose()
    raw = sqlite3.connect(tmp_path / "s.sqlite3")
    with pytest.raises(sqlite3.IntegrityError):
        raw.execute("PRAGMA foreign_keys=ON")
        raw.execute("INSERT INTO barcodes (gtin, sku) VALUES ('00000000000000', 'no-such-sku')")
    raw.close()


def test_server_refuses_an_unmigrated_database(tmp_path):
    settings = make_settings(tmp_path)
    with pytest.raises(SchemaOutOfDate, match="aisle edge migrate"):
        build_context(settings)


def test_the_upgrade_keeps_stores_data_and_strips_plu_zeros(tmp_path):
    # A store in the field at 0002 with a zero-padded PLU: after the upgrade its scale labels
    # still find the product, and variable-price products may be stored.
    db = Database.open(tmp_path / "s.sqlite3")
    upgrade(db.writer, "0002")
    with db.writer.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO products (sku, name, unit_price, tax_rate_bp, category, sold_by, "
            "age_restricted, plu, updated_at) VALUES "
            "('APPLE', 'Apples', 1580, 900, '', 'kg', 0, '012345', '2026-11-25 00:00:00'),"
            "('PEAR', 'Pears', 1200, 900, '', 'kg', 0, '000077', '2026-11-25 00:00:00')"
        )
    upgrade(db.writer)
    with db.writer.begin() as conn:
        plus = dict(conn.exec_driver_sql("SELECT sku, plu FROM products").all())
        assert plus == {"APPLE": "12345", "PEAR": "77"}
        conn.exec_driver_sql(
            "INSERT INTO products (sku, name, unit_price, tax_rate_bp, category, sold_by, "
            "age_restricted, plu, max_price, updated_at) VALUES "
            "('HAM', 'Ham', 3000, 900, '', 'variable', 0, NULL, 8000, '2026-11-25 00:00:00')"
        )
        with pytest.raises(Exception, match="CHECK"):
            conn.exec_driver_sql("UPDATE products SET sold_by = 'litre' WHERE sku = 'HAM'")
    db.dispose()

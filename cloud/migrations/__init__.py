"""Alembic migrations of the cloud database (PostgreSQL and SQLite alike); see
:mod:`shared.migrations`."""

from __future__ import annotations

from pathlib import Path

from shared.migrations import MigrationScripts, current_revision

__all__ = ["current_revision", "head_revision", "upgrade"]

SCRIPTS = MigrationScripts(Path(__file__).parent)

upgrade = SCRIPTS.upgrade
head_revision = SCRIPTS.head_revision

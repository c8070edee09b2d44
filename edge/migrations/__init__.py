"""Alembic migrations of the store database; stores in the field upgrade in place.

Alembic (with Mako and Pygments behind it) is imported only when a migration runs: the server
processes check the schema revision by reading ``alembic_version`` themselves, so they do not
carry about 7 MB of migration tooling per process (see :mod:`shared.migrations`). :data:`HEAD`
names the newest revision; a test checks it against Alembic's own view of the scripts, so adding
a migration without moving it fails the suite.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from shared.migrations import MigrationScripts, current_revision

__all__ = ["HEAD", "current_revision", "head_revision", "upgrade", "upgrade_if_behind"]

SCRIPTS = MigrationScripts(Path(__file__).parent)

#: The newest revision in ``versions/``; move it with every new migration.
HEAD = "0016"

upgrade = SCRIPTS.upgrade
head_revision = SCRIPTS.head_revision


def upgrade_if_behind(engine: Engine) -> str | None:
    """Upgrade to :data:`HEAD` unless the database is there already; returns the revision."""
    if current_revision(engine) != HEAD:
        upgrade(engine)
    return current_revision(engine)

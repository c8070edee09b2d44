"""Alembic migrations of the store database; stores in the field upgrade in place.

Alembic (with Mako and Pygments behind it) is imported only when a migration runs: the server
processes check the schema revision by reading ``alembic_version`` themselves, so they do not
carry about 7 MB of migration tooling per process. :data:`HEAD` names the newest revision; a
test checks it against Alembic's own view of the scripts, so adding a migration without moving
it fails the suite.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

HERE = Path(__file__).parent

#: The newest revision in ``versions/``; move it with every new migration.
HEAD = "0008"


def alembic_config(engine: Engine) -> Config:
    """An Alembic config that runs on ``engine`` (passed through ``attributes``)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database on ``engine`` up to ``revision``."""
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade_if_behind(engine: Engine) -> str | None:
    """Upgrade to :data:`HEAD` unless the database is there already; returns the revision."""
    if current_revision(engine) != HEAD:
        upgrade(engine)
    return current_revision(engine)


def head_revision() -> str | None:
    """The newest revision among the migration scripts, as Alembic sees them."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    return ScriptDirectory.from_config(cfg).get_current_head()

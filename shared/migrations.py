"""Running a folder of Alembic migrations on an engine (the store's and the cloud's alike).

Alembic (with Mako and Pygments behind it) is imported only when a migration runs or the scripts
are read: a server checks its schema revision with :func:`current_revision`, which reads
``alembic_version`` itself, so its processes do not carry the migration tooling.

The folder's ``env.py`` finds the engine to run on in ``context.config.attributes["engine"]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


class MigrationScripts:
    """The Alembic scripts in ``location`` (its ``env.py`` and ``versions/``)."""

    def __init__(self, location: Path) -> None:
        self.location = location

    def config(self, engine: Engine | None = None) -> Config:
        """An Alembic config for these scripts that runs on ``engine``."""
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(self.location))
        if engine is not None:
            cfg.attributes["engine"] = engine
        return cfg

    def upgrade(self, engine: Engine, revision: str = "head") -> None:
        """Bring the database on ``engine`` up to ``revision``."""
        from alembic import command

        command.upgrade(self.config(engine), revision)

    def head_revision(self) -> str | None:
        """The newest revision among the scripts, as Alembic sees them."""
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self.config()).get_current_head()

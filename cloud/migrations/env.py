"""Alembic environment: runs on the engine handed in by ``cloud.migrations.upgrade``."""

from __future__ import annotations

from alembic import context

import cloud.models  # noqa: F401  (registers every table on the metadata)
from cloud.db import Base

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copy-and-move
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()

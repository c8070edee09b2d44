"""ids of applied events, sales and sale lines as PostgreSQL's native uuid

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 12:00:00

A batch of 1,000 sales writes about 7,000 of these ids, each in a row and an index entry: as
``uuid`` they take 16 bytes instead of 37 or more. Every stored id moves to its key
(``cloud.db.id_key``): a canonical UUID stays as it is; any other text (no Aisle store makes
such ids) becomes its name-based UUID, computed here the same way in SQL. SQLite keeps text;
only ids that are not canonical UUIDs are rewritten to their keys there.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cloud.db import CANONICAL_UUID, ID_KEY_NAMESPACE, id_key

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: (table, column) pairs that move; sale_lines.sale_id refers to sales.id.
COLUMNS = (
    ("applied_events", "event_id"),
    ("sales", "id"),
    ("sale_lines", "id"),
    ("sale_lines", "sale_id"),
)
FK_NAME = "fk_sale_lines_sale_id_sales"

#: ``cloud.db.id_key`` in SQL: uuid3 is the MD5 of namespace and name, with the version nibble
#: set to 3 and the variant bits to 10.
PG_KEY_FUNCTION = f"""
CREATE FUNCTION pg_temp.aisle_id_key(t text) RETURNS uuid LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN t ~ '^{CANONICAL_UUID.pattern}$' THEN t::uuid ELSE (
    SELECT (substr(h, 1, 12) || '3' || substr(h, 14, 3)
            || to_hex((('x' || substr(h, 17, 1))::bit(4)::int & 3) | 8)
            || substr(h, 18))::uuid
    FROM (SELECT md5(decode('{ID_KEY_NAMESPACE.hex}', 'hex') || convert_to(t, 'UTF8')) AS h) k
  ) END
$$
"""


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(PG_KEY_FUNCTION)
        op.drop_constraint(FK_NAME, "sale_lines", type_="foreignkey")
        for table, column in COLUMNS:
            op.execute(
                f'ALTER TABLE "{table}" ALTER COLUMN "{column}" TYPE uuid '
                f'USING pg_temp.aisle_id_key("{column}")'
            )
        op.create_foreign_key(FK_NAME, "sale_lines", "sales", ["sale_id"], ["id"])
        op.execute("DROP FUNCTION pg_temp.aisle_id_key(text)")
    elif bind.dialect.name == "sqlite":
        _rekey_sqlite(bind)


def _rekey_sqlite(bind: sa.Connection) -> None:
    """Rewrite the ids that are not canonical UUIDs to their keys (usually none)."""
    driver = bind.connection.driver_connection
    assert driver is not None
    driver.create_function("aisle_id_key", 1, id_key, deterministic=True)
    # A sale's id and its lines' sale_id move in the same transaction.
    bind.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
    for table, column in COLUMNS:
        bind.exec_driver_sql(
            f'UPDATE "{table}" SET "{column}" = aisle_id_key("{column}") '
            f'WHERE "{column}" != aisle_id_key("{column}")'
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite kept text; the keys stay
    op.drop_constraint(FK_NAME, "sale_lines", type_="foreignkey")
    for table, column in COLUMNS:
        op.execute(
            f'ALTER TABLE "{table}" ALTER COLUMN "{column}" TYPE VARCHAR(64) USING "{column}"::text'
        )
    op.create_foreign_key(FK_NAME, "sale_lines", "sales", ["sale_id"], ["id"])

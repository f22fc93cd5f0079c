"""id_map.number_key: the target number as K3Cloud compares it, unique per entity.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

K3Cloud compares numbers without regard to case or width (SQL Server's default collation), so the id map
must find ``so000001`` when it holds ``SO000001``. ``number_key`` is the number stripped, NFKC-normalised and
casefolded (``fxiaoke_k3cloud.numbers.number_key``, repeated here so the revision stays self-contained).
Existing rows are filled in; should two of them share a key, the later rows keep NULL (a person decides).
"""

from __future__ import annotations

import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _key(number: str | None) -> str | None:
    if number is None:
        return None
    return unicodedata.normalize("NFKC", str(number)).strip().casefold() or None


def upgrade() -> None:
    with op.batch_alter_table("id_map") as batch:
        batch.add_column(sa.Column("number_key", sa.String(200), nullable=True))
    conn = op.get_bind()
    table = sa.table("id_map", sa.column("id", sa.BigInteger()), sa.column("entity", sa.String()),
                     sa.column("target_number", sa.String()), sa.column("number_key", sa.String()))
    seen: set[tuple[str, str]] = set()
    rows = conn.execute(sa.select(table.c.id, table.c.entity, table.c.target_number).order_by(table.c.id)).all()
    for row in rows:
        key = _key(row.target_number)
        if key is None or (row.entity, key) in seen:
            continue
        seen.add((row.entity, key))
        conn.execute(sa.update(table).where(table.c.id == row.id).values(number_key=key))
    with op.batch_alter_table("id_map") as batch:
        batch.create_unique_constraint("uq_id_map_entity_number_key", ["entity", "number_key"])


def downgrade() -> None:
    with op.batch_alter_table("id_map") as batch:
        batch.drop_constraint("uq_id_map_entity_number_key", type_="unique")
        batch.drop_column("number_key")

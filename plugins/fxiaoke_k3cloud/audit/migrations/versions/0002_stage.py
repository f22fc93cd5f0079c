"""Staging table handing data between a run's tasks (sync_stage).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sync_stage",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("run", _ID, sa.ForeignKey("sync_run.id", name="fk_sync_stage_run", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.String(200), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
    )
    op.create_index("ix_sync_stage_run_kind_seq", "sync_stage", ["run", "kind", "seq"])


def downgrade() -> None:
    op.drop_index("ix_sync_stage_run_kind_seq", table_name="sync_stage")
    op.drop_table("sync_stage")

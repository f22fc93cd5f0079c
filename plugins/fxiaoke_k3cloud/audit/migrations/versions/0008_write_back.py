"""sync_write_back: what the write-back step last gave each CRM record (K3Cloud number, status, final or not).

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-03

The orders and customers flows write the K3Cloud number and document status back to the CRM record
(``flows/writeback.py``). One row per (entity, source id) says what was written, so a run calls the CRM only
where K3Cloud changed since, and reads K3Cloud again only for documents whose state is not final. Self-contained
on purpose (no import of ``schema.py``), like the earlier revisions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_write_back",
        sa.Column("entity", sa.String(100), primary_key=True),
        sa.Column("source_id", sa.String(200), primary_key=True),
        sa.Column("target_id", sa.String(200), nullable=True),
        sa.Column("target_number", sa.String(200), nullable=True),
        sa.Column("number_written", sa.String(200), nullable=True),
        sa.Column("status_written", sa.String(100), nullable=True),
        sa.Column("state", sa.String(20), nullable=True),
        sa.Column("final", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("run", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_sync_write_back_open", "sync_write_back", ["entity", "final"])


def downgrade() -> None:
    op.drop_index("ix_sync_write_back_open", table_name="sync_write_back")
    op.drop_table("sync_write_back")

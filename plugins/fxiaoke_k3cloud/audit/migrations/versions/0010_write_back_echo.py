"""sync_write_back.echo_ms: the CRM's last_modified_time left by the write-back's own update (its "echo").

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03

The write-back's CRM update moves the record's last_modified_time, so the flow's next window would read the
record again as a change. ``echo_ms`` keeps the time the CRM reported after that update (read back in the same
chunk query, ``flows/echoes.py``); the extract skips a record whose time still equals it. The index serves the
extract's one query per run (echoes inside the window). Self-contained on purpose (no import of ``schema.py``),
like the earlier revisions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sync_write_back", sa.Column("echo_ms", sa.BigInteger(), nullable=True))
    op.create_index("ix_sync_write_back_echo", "sync_write_back", ["entity", "echo_ms"])


def downgrade() -> None:
    op.drop_index("ix_sync_write_back_echo", table_name="sync_write_back")
    with op.batch_alter_table("sync_write_back") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("echo_ms")

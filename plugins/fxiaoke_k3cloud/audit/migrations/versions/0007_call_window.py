"""sync_call_window: the Fxiaoke per-path call window, shared by every task process of a deployment.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

The gateway allows 100 calls per 20 s per interface path. The client throttle kept its sliding window in the
process, so N task processes (Celery workers, parallel tasks) could send N × the limit and be refused with
30004. One row per (app, path) holds the times of the calls granted in the last window;
``fxiaoke_k3cloud.audit.throttle`` grants slots from it under a row lock, a few at a time. Self-contained on
purpose (no import of ``schema.py``), like the earlier revisions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_call_window",
        sa.Column("window_key", sa.String(64), primary_key=True),
        sa.Column("path", sa.String(300), nullable=False),
        sa.Column("granted", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sync_call_window")

"""sync_api_token: the Fxiaoke corpAccessToken and its token-call budget, shared by every worker.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

Under the CeleryExecutor every task is a fresh process on one of several machines, so a process-wide token
cache lives for one task: each task fetched its own token, and the token endpoint (about 10 calls a minute
per app) refused them. One row per app holds the token (Fernet-encrypted with Airflow's key) with its
expiry, and the times of the recent token calls; ``fxiaoke_k3cloud.audit.tokens`` reads and renews it under
a row lock. Self-contained on purpose (no import of ``schema.py``), like the earlier revisions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sync_api_token",
        sa.Column("token_key", sa.String(64), primary_key=True),
        sa.Column("app_id", sa.String(100), nullable=False),
        sa.Column("token_encrypted", sa.Text(), nullable=True),
        sa.Column("corp_id", sa.String(100), nullable=True),
        sa.Column("issued_at", _TS, nullable=True),
        sa.Column("expires_at", _TS, nullable=True),
        sa.Column("recent_calls", sa.Text(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sync_api_token")

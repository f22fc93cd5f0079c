"""Write claims (sync_claim) and abandoned runs (sync_run.status 'abandoned', sync_run.heartbeat_at).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

``sync_claim`` holds one row per record being written right now: a run inserts (entity, key) before it
creates the record's target document and deletes it after the outcome is stored. The unique key makes two
runs (processes, Celery workers) that reach the same record at once take turns instead of writing twice.
Self-contained on purpose (no import of ``schema.py``), like the earlier revisions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)
_OLD_STATUSES = ("running", "success", "partial", "failed")
_STATUSES = (*_OLD_STATUSES, "abandoned")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "sync_claim",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("entity", sa.String(100), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("holder", sa.String(250), nullable=False),
        sa.Column("run", sa.BigInteger(), nullable=True),
        sa.Column("claimed_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.UniqueConstraint("entity", "key", name="uq_sync_claim_entity_key"),
    )
    op.create_index("ix_sync_claim_run", "sync_claim", ["run"])
    with op.batch_alter_table("sync_run") as batch:
        batch.add_column(sa.Column("heartbeat_at", _TS, nullable=True))
        batch.drop_constraint("ck_sync_run_status", type_="check")
        batch.create_check_constraint("ck_sync_run_status", _in("status", _STATUSES))


def downgrade() -> None:
    op.execute("UPDATE sync_run SET status = 'failed' WHERE status = 'abandoned'")
    with op.batch_alter_table("sync_run") as batch:
        batch.drop_constraint("ck_sync_run_status", type_="check")
        batch.create_check_constraint("ck_sync_run_status", _in("status", _OLD_STATUSES))
        batch.drop_column("heartbeat_at")
    op.drop_index("ix_sync_claim_run", table_name="sync_claim")
    op.drop_table("sync_claim")

"""Reconciliation drift report: sync_drift_run and sync_drift.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Self-contained on purpose (no import of ``schema.py``), like the earlier revisions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)
_STATUSES = ("running", "clean", "drift", "failed")
_KINDS = ("missing_in_erp", "extra_in_erp", "field_difference", "amount_difference")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "sync_drift_run",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("flows", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
        sa.Column("threshold", sa.Integer(), nullable=True),
        sa.Column("drift_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.CheckConstraint(_in("status", _STATUSES), name="ck_sync_drift_run_status"),
    )
    op.create_index("ix_sync_drift_run_started", "sync_drift_run", ["started_at"])
    op.create_table(
        "sync_drift",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "drift_run", _ID, sa.ForeignKey("sync_drift_run.id", name="fk_sync_drift_run", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("flow", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("source_id", sa.String(200), nullable=True),
        sa.Column("target_number", sa.String(200), nullable=True),
        sa.Column("field", sa.String(200), nullable=True),
        sa.Column("crm_value", sa.Text(), nullable=True),
        sa.Column("erp_value", sa.Text(), nullable=True),
        sa.Column("detected_at", _TS, nullable=False),
        sa.CheckConstraint(_in("kind", _KINDS), name="ck_sync_drift_kind"),
    )
    op.create_index("ix_sync_drift_run_flow", "sync_drift", ["drift_run", "flow"])
    op.create_index("ix_sync_drift_source", "sync_drift", ["flow", "source_id"])


def downgrade() -> None:
    op.drop_index("ix_sync_drift_source", table_name="sync_drift")
    op.drop_index("ix_sync_drift_run_flow", table_name="sync_drift")
    op.drop_table("sync_drift")
    op.drop_index("ix_sync_drift_run_started", table_name="sync_drift_run")
    op.drop_table("sync_drift_run")

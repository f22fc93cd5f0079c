"""Initial audit schema: sync_run, sync_record, id_map, watermark, parked.

Revision ID: 0001
Revises:
Create Date: 2026-11-29

Self-contained on purpose (no import of ``schema.py``): a released migration must keep producing the
same tables when the current schema module moves on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)
_COUNTS = ("extracted", "created", "updated", "unchanged", "rejected", "failed", "parked", "skipped")
_RUN_STATUSES = ("running", "success", "partial", "failed")
_OUTCOMES = ("created", "updated", "unchanged", "rejected", "failed", "parked", "released", "reported", "skipped")
_PARKED_STATUSES = ("parked", "released", "escalated", "quarantined")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "sync_run",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("flow", sa.String(100), nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("run_type", sa.String(50), nullable=False),
        sa.Column("window_start", _TS, nullable=False),
        sa.Column("window_end", _TS, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
        *(sa.Column(name, sa.Integer(), nullable=False, server_default="0") for name in _COUNTS),
        sa.Column("api_calls", sa.JSON(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.CheckConstraint(_in("status", _RUN_STATUSES), name="ck_sync_run_status"),
        sa.UniqueConstraint("flow", "run_id", name="uq_sync_run_flow_run_id"),
    )
    op.create_index("ix_sync_run_flow_started", "sync_run", ["flow", "started_at"])

    op.create_table(
        "sync_record",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "run", _ID, sa.ForeignKey("sync_run.id", name="fk_sync_record_run", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("flow", sa.String(100), nullable=False),
        sa.Column("entity", sa.String(100), nullable=False),
        sa.Column("source_id", sa.String(200), nullable=False),
        sa.Column("source_name", sa.Text(), nullable=True),
        sa.Column("target_id", sa.String(200), nullable=True),
        sa.Column("target_number", sa.String(200), nullable=True),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("error_class", sa.String(200), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("payload_hash", sa.String(128), nullable=True),
        sa.Column("request_excerpt", sa.Text(), nullable=True),
        sa.Column("response_excerpt", sa.Text(), nullable=True),
        sa.Column("created_at", _TS, nullable=False, server_default=sa.func.current_timestamp()),
        sa.CheckConstraint(_in("outcome", _OUTCOMES), name="ck_sync_record_outcome"),
    )
    op.create_index("ix_sync_record_flow_source", "sync_record", ["flow", "source_id"])
    op.create_index("ix_sync_record_flow_target_number", "sync_record", ["flow", "target_number"])
    op.create_index("ix_sync_record_run", "sync_record", ["run"])
    op.create_index("ix_sync_record_outcome", "sync_record", ["outcome"])

    op.create_table(
        "id_map",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("entity", sa.String(100), nullable=False),
        sa.Column("source_id", sa.String(200), nullable=False),
        sa.Column("target_id", sa.String(200), nullable=True),
        sa.Column("target_number", sa.String(200), nullable=True),
        sa.Column("payload_hash", sa.String(128), nullable=True),
        sa.Column("source_modified_ms", sa.BigInteger(), nullable=True),
        sa.Column("synced_at", _TS, nullable=False),
        sa.Column("run", sa.BigInteger(), nullable=True),
        sa.UniqueConstraint("entity", "source_id", name="uq_id_map_entity_source"),
        sa.UniqueConstraint("entity", "target_number", name="uq_id_map_entity_target_number"),
    )

    op.create_table(
        "watermark",
        sa.Column("flow", sa.String(100), primary_key=True),
        sa.Column("value_ms", sa.BigInteger(), nullable=False),
        sa.Column("value_at", _TS, nullable=False),
        sa.Column("run_id", sa.String(250), nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
    )

    op.create_table(
        "parked",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("entity", sa.String(100), nullable=False),
        sa.Column("source_id", sa.String(200), nullable=False),
        sa.Column("flow", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("missing", sa.Text(), nullable=True),
        sa.Column("first_parked_at", _TS, nullable=False),
        sa.Column("last_tried_at", _TS, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("released_at", _TS, nullable=True),
        sa.Column("status", sa.String(20), nullable=False, server_default="parked"),
        sa.CheckConstraint(_in("status", _PARKED_STATUSES), name="ck_parked_status"),
        sa.UniqueConstraint("entity", "source_id", name="uq_parked_entity_source"),
    )
    op.create_index("ix_parked_entity_status", "parked", ["entity", "status"])


def downgrade() -> None:
    op.drop_table("parked")
    op.drop_table("watermark")
    op.drop_table("id_map")
    op.drop_index("ix_sync_record_outcome", table_name="sync_record")
    op.drop_index("ix_sync_record_run", table_name="sync_record")
    op.drop_index("ix_sync_record_flow_target_number", table_name="sync_record")
    op.drop_index("ix_sync_record_flow_source", table_name="sync_record")
    op.drop_table("sync_record")
    op.drop_index("ix_sync_run_flow_started", table_name="sync_run")
    op.drop_table("sync_run")

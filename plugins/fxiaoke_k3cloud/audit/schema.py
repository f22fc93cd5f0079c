"""Table definitions of the audit store, as the store's queries see them.

The DDL of record lives in the Alembic migrations (``migrations/versions``); this module mirrors the
current head so queries are typed. ``tests/audit/test_migrations.py`` compares the two on both
dialects, so a column added here without a migration (or the other way round) fails a test.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

RUN_STATUSES = ("running", "success", "partial", "failed", "abandoned")
#: Outcomes that have a counter column on ``sync_run``.
RUN_COUNT_COLUMNS = ("extracted", "created", "updated", "unchanged", "rejected", "failed", "parked", "skipped")
RECORD_OUTCOMES = (
    "created",
    "updated",
    "unchanged",
    "rejected",
    "failed",
    "parked",
    "released",
    "reported",
    "skipped",
)
PARKED_STATUSES = ("parked", "released", "escalated", "quarantined")

# Postgres needs BIGINT for tables that grow by thousands of rows a run; SQLite only auto-increments an
# ``INTEGER PRIMARY KEY``.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def check_in(column: str, values: tuple[str, ...]) -> str:
    """SQL text of a CHECK constraint limiting ``column`` to ``values`` (shared with the migrations)."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, whatever the database.

    Postgres stores ``timestamptz``. SQLite has no timestamp type: values are stored as naive UTC text,
    which sorts and compares correctly as long as every writer goes through this type. Naive datetimes
    are refused rather than guessed at (Airflow silently treats them as UTC; an audit trail must not).
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware datetime (UTC preferred)")
        v = value.astimezone(timezone.utc)
        # A plain datetime: drivers adapt pendulum subclasses inconsistently.
        plain = datetime(v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond, tzinfo=timezone.utc)
        return plain.replace(tzinfo=None) if dialect.name == "sqlite" else plain

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


metadata = sa.MetaData()

sync_run = sa.Table(
    "sync_run",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("flow", sa.String(100), nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("run_type", sa.String(50), nullable=False),
    sa.Column("window_start", UTCDateTime(), nullable=False),
    sa.Column("window_end", UTCDateTime(), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime(), nullable=True),
    *(sa.Column(name, sa.Integer(), nullable=False, server_default="0") for name in RUN_COUNT_COLUMNS),
    sa.Column("api_calls", sa.JSON(), nullable=True),
    sa.Column("message", sa.Text(), nullable=True),
    # Last sign of life of the run's tasks (revision 0004); a run whose tasks are gone is closed as abandoned.
    sa.Column("heartbeat_at", UTCDateTime(), nullable=True),
    sa.CheckConstraint(check_in("status", RUN_STATUSES), name="ck_sync_run_status"),
    # One row per flow and business window (Airflow run ids change between manual re-runs of a window).
    sa.UniqueConstraint("flow", "run_id", name="uq_sync_run_flow_run_id"),
    sa.Index("ix_sync_run_flow_started", "flow", "started_at"),
)

sync_record = sa.Table(
    "sync_record",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("run", BigId, sa.ForeignKey("sync_run.id", name="fk_sync_record_run", ondelete="CASCADE"), nullable=False),
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
    sa.Column("created_at", UTCDateTime(), nullable=False, server_default=sa.func.current_timestamp()),
    sa.CheckConstraint(check_in("outcome", RECORD_OUTCOMES), name="ck_sync_record_outcome"),
    sa.Index("ix_sync_record_flow_source", "flow", "source_id"),
    sa.Index("ix_sync_record_flow_target_number", "flow", "target_number"),
    sa.Index("ix_sync_record_run", "run"),
    sa.Index("ix_sync_record_outcome", "outcome"),
)

id_map = sa.Table(
    "id_map",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("entity", sa.String(100), nullable=False),
    sa.Column("source_id", sa.String(200), nullable=False),
    sa.Column("target_id", sa.String(200), nullable=True),
    sa.Column("target_number", sa.String(200), nullable=True),
    sa.Column("payload_hash", sa.String(128), nullable=True),
    sa.Column("source_modified_ms", sa.BigInteger(), nullable=True),
    sa.Column("synced_at", UTCDateTime(), nullable=False),
    # No FK: a mapping outlives the run that wrote it (runs may be pruned).
    sa.Column("run", sa.BigInteger(), nullable=True),
    sa.UniqueConstraint("entity", "source_id", name="uq_id_map_entity_source"),
    sa.UniqueConstraint("entity", "target_number", name="uq_id_map_entity_target_number"),
    # The number as K3Cloud compares it (stripped, NFKC, casefold; revision 0005): so000001 is SO000001.
    sa.Column("number_key", sa.String(200), nullable=True),
    sa.UniqueConstraint("entity", "number_key", name="uq_id_map_entity_number_key"),
)

watermark = sa.Table(
    "watermark",
    metadata,
    sa.Column("flow", sa.String(100), primary_key=True),
    sa.Column("value_ms", sa.BigInteger(), nullable=False),
    sa.Column("value_at", UTCDateTime(), nullable=False),
    sa.Column("run_id", sa.String(250), nullable=True),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

parked = sa.Table(
    "parked",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("entity", sa.String(100), nullable=False),
    sa.Column("source_id", sa.String(200), nullable=False),
    sa.Column("flow", sa.String(100), nullable=False),
    sa.Column("reason", sa.Text(), nullable=True),
    sa.Column("missing", sa.Text(), nullable=True),
    sa.Column("first_parked_at", UTCDateTime(), nullable=False),
    sa.Column("last_tried_at", UTCDateTime(), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="1"),
    sa.Column("released_at", UTCDateTime(), nullable=True),
    sa.Column("status", sa.String(20), nullable=False, server_default="parked"),
    sa.CheckConstraint(check_in("status", PARKED_STATUSES), name="ck_parked_status"),
    sa.UniqueConstraint("entity", "source_id", name="uq_parked_entity_source"),
    sa.Index("ix_parked_entity_status", "entity", "status"),
)

# Hand-over area between a run's tasks (raw records, packages); rows are deleted when the run reports.
sync_stage = sa.Table(
    "sync_stage",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("run", BigId, sa.ForeignKey("sync_run.id", name="fk_sync_stage_run", ondelete="CASCADE"), nullable=False),
    sa.Column("kind", sa.String(50), nullable=False),
    sa.Column("seq", sa.Integer(), nullable=False),
    sa.Column("source_id", sa.String(200), nullable=False),
    sa.Column("payload", sa.Text(), nullable=False),
    sa.Index("ix_sync_stage_run_kind_seq", "run", "kind", "seq"),
)

# ---------------------------------------------------------------- write claims (revision 0004)

# One row per record being written right now (see ClaimMixin): the unique (entity, key) makes two runs that
# reach the same record at once take turns. ``expires_at`` frees the claim of a run that was killed.
sync_claim = sa.Table(
    "sync_claim",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("entity", sa.String(100), nullable=False),
    sa.Column("key", sa.String(250), nullable=False),
    sa.Column("holder", sa.String(250), nullable=False),
    sa.Column("run", sa.BigInteger(), nullable=True),
    sa.Column("claimed_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("entity", "key", name="uq_sync_claim_entity_key"),
    sa.Index("ix_sync_claim_run", "run"),
)

# ---------------------------------------------------------------- reconciliation (revision 0003)

DRIFT_RUN_STATUSES = ("running", "clean", "drift", "failed")
# The last two (revision 0009): K3Cloud → CRM flows, whose target is the CRM (ops/reconcile_crm.py).
DRIFT_KINDS = ("missing_in_erp", "extra_in_erp", "field_difference", "amount_difference", "missing_in_crm",
               "extra_in_crm")

# One reconciliation of CRM against ERP (all flows it compared); its rows are in ``sync_drift``.
sync_drift_run = sa.Table(
    "sync_drift_run",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("flows", sa.String(200), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime(), nullable=True),
    sa.Column("threshold", sa.Integer(), nullable=True),
    sa.Column("drift_count", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("summary", sa.JSON(), nullable=True),
    sa.Column("message", sa.Text(), nullable=True),
    sa.CheckConstraint(check_in("status", DRIFT_RUN_STATUSES), name="ck_sync_drift_run_status"),
    sa.Index("ix_sync_drift_run_started", "started_at"),
)

# One difference found by a reconciliation. ``source_id`` is the CRM id (None for an ERP document no CRM
# record claims, and for per-day amount totals); ``field`` names the compared field or ``day:YYYY-MM-DD``.
sync_drift = sa.Table(
    "sync_drift",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("drift_run", BigId, sa.ForeignKey("sync_drift_run.id", name="fk_sync_drift_run", ondelete="CASCADE"),
              nullable=False),
    sa.Column("flow", sa.String(100), nullable=False),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("source_id", sa.String(200), nullable=True),
    sa.Column("target_number", sa.String(200), nullable=True),
    sa.Column("field", sa.String(200), nullable=True),
    sa.Column("crm_value", sa.Text(), nullable=True),
    sa.Column("erp_value", sa.Text(), nullable=True),
    sa.Column("detected_at", UTCDateTime(), nullable=False),
    sa.CheckConstraint(check_in("kind", DRIFT_KINDS), name="ck_sync_drift_kind"),
    sa.Index("ix_sync_drift_run_flow", "drift_run", "flow"),
    sa.Index("ix_sync_drift_source", "flow", "source_id"),
)

# ---------------------------------------------------------------- shared API token (revision 0006)

# One row per Fxiaoke app (``token_key`` = sha256 of host, appId and permanentCode; the secrets themselves are
# never stored): the corpAccessToken every task process of the deployment uses, Fernet-encrypted with
# Airflow's key, and the times of the recent token calls (the endpoint's budget, shared by every worker).
# Read and renewed under a row lock (``audit/tokens.py``).
sync_api_token = sa.Table(
    "sync_api_token",
    metadata,
    sa.Column("token_key", sa.String(64), primary_key=True),
    sa.Column("app_id", sa.String(100), nullable=False),
    sa.Column("token_encrypted", sa.Text(), nullable=True),
    sa.Column("corp_id", sa.String(100), nullable=True),
    sa.Column("issued_at", UTCDateTime(), nullable=True),
    sa.Column("expires_at", UTCDateTime(), nullable=True),
    sa.Column("recent_calls", sa.Text(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

# The Fxiaoke per-path call window (migration 0007; ``audit/throttle.py``): granted slot times of the last window.
sync_call_window = sa.Table(
    "sync_call_window",
    metadata,
    sa.Column("window_key", sa.String(64), primary_key=True),
    sa.Column("path", sa.String(300), nullable=False),
    sa.Column("granted", sa.Text(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

# What the write-back step (``flows/writeback.py``) last gave the CRM record of each synced record: the K3Cloud
# document it describes, the number and status label written, the state code read, and whether that state is
# final (closed / cancelled: not read again). A run writes to the CRM only where this differs from K3Cloud.
# ``echo_ms``: the CRM record's last_modified_time right after the write-back's own update (None when it could not
# be told apart from a user's edit); the extract skips the record while its time still equals it (flows/echoes.py).
sync_write_back = sa.Table(
    "sync_write_back",
    metadata,
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
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("echo_ms", sa.BigInteger(), nullable=True),
    sa.Index("ix_sync_write_back_open", "entity", "final"),
    sa.Index("ix_sync_write_back_echo", "entity", "echo_ms"),
)

"""sync_drift kinds of the K3Cloud → CRM flows' reconciliation: missing_in_crm, extra_in_crm.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

A K3Cloud → CRM flow (deliveries, receipts) is reconciled the other way round: its target is the CRM
(``ops/reconcile_crm.py``). Only the kind check constraint changes. Self-contained on purpose (no import of
``schema.py``), like the earlier revisions.
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_OLD_KINDS = ("missing_in_erp", "extra_in_erp", "field_difference", "amount_difference")
_KINDS = (*_OLD_KINDS, "missing_in_crm", "extra_in_crm")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    with op.batch_alter_table("sync_drift") as batch:
        batch.drop_constraint("ck_sync_drift_kind", type_="check")
        batch.create_check_constraint("ck_sync_drift_kind", _in("kind", _KINDS))


def downgrade() -> None:
    op.execute(f"DELETE FROM sync_drift WHERE kind NOT IN ({', '.join(repr(k) for k in _OLD_KINDS)})")
    with op.batch_alter_table("sync_drift") as batch:
        batch.drop_constraint("ck_sync_drift_kind", type_="check")
        batch.create_check_constraint("ck_sync_drift_kind", _in("kind", _OLD_KINDS))

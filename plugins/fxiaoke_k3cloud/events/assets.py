"""The assets that wake the flows, and their watchers; imported by DAG files at parse time (no I/O here).

Settings come from the environment of the dag-processor (they become the trigger's kwargs, so a change
starts a new trigger; the position is keyed by the watcher name and carries over):

| variable | default | meaning |
|---|---|---|
| ``SYNC_K3CLOUD_EVENTS`` | ``poll`` | ``poll``: a watcher in the triggerer; ``push`` or ``schedule``: no watcher (the receiver, or only the 15-minute timetable, wakes the flow) |
| ``SYNC_K3CLOUD_POLL_S`` | ``5`` | poll interval in business hours (s) |
| ``SYNC_K3CLOUD_OFF_HOURS_POLL_S`` | ``60`` | poll interval outside business hours (s) |
| ``SYNC_BUSINESS_HOURS`` | ``08:00-20:00`` | business hours, Asia/Shanghai, Monday to Saturday |
| ``SYNC_FXIAOKE_EVENTS`` | ``poll`` | the same for the CRM side |
| ``SYNC_FXIAOKE_POLL_S`` | ``20`` | CRM poll interval in business hours (s); 15–30 keeps within the call budget |
| ``SYNC_FXIAOKE_OFF_HOURS_POLL_S`` | ``120`` | CRM poll interval outside business hours (s) |
"""

from __future__ import annotations

import os

from airflow.sdk import Asset, AssetWatcher

from fxiaoke_k3cloud.errors import ConfigError
from fxiaoke_k3cloud.events.fxiaoke import FxiaokeChangeTrigger
from fxiaoke_k3cloud.events.k3cloud import K3CloudAuditTrigger
from fxiaoke_k3cloud.events.pacing import Pacing

K3CLOUD_AUDITED_DELIVERY_NOTICES = "k3cloud_audited_delivery_notices"
FXIAOKE_CHANGED_ACCOUNTS = "fxiaoke_changed_accounts"
FXIAOKE_CHANGED_ORDERS = "fxiaoke_changed_sales_orders"
MODES = ("poll", "push", "schedule")


def _mode(variable: str) -> str:
    mode = os.environ.get(variable, "poll").strip().lower()
    if mode not in MODES:
        raise ConfigError(f"${variable} must be one of {MODES}, got {mode!r}")
    return mode


def _pacing(prefix: str, poll_s: float, off_hours_s: float) -> Pacing:
    try:
        return Pacing(
            poll_s=float(os.environ.get(f"{prefix}_POLL_S", poll_s)),
            off_hours_poll_s=float(os.environ.get(f"{prefix}_OFF_HOURS_POLL_S", off_hours_s)),
            business_hours=os.environ.get("SYNC_BUSINESS_HOURS", "08:00-20:00"),
        )
    except ValueError as exc:
        raise ConfigError(f"${prefix}_POLL_S / ${prefix}_OFF_HOURS_POLL_S must be numbers of seconds: {exc}") from None


def k3cloud_audited_delivery_notices() -> Asset:
    """Rung when K3Cloud audits (or, by push, un-audits) a delivery notice."""
    watchers = []
    if _mode("SYNC_K3CLOUD_EVENTS") == "poll":
        trigger = K3CloudAuditTrigger(name=K3CLOUD_AUDITED_DELIVERY_NOTICES,
                                      pacing=_pacing("SYNC_K3CLOUD", 5, 60).as_kwargs())
        watchers.append(AssetWatcher(name="k3cloud_delivery_notice_audits", trigger=trigger))
    return Asset(K3CLOUD_AUDITED_DELIVERY_NOTICES, watchers=watchers)


def fxiaoke_changed(object_api_name: str) -> Asset:
    """Rung when a CRM record of ``object_api_name`` (AccountObj, SalesOrderObj) is created or changed."""
    name = {"AccountObj": FXIAOKE_CHANGED_ACCOUNTS, "SalesOrderObj": FXIAOKE_CHANGED_ORDERS}[object_api_name]
    watchers = []
    if _mode("SYNC_FXIAOKE_EVENTS") == "poll":
        trigger = FxiaokeChangeTrigger(name=name, object_api_name=object_api_name,
                                       pacing=_pacing("SYNC_FXIAOKE", 20, 120).as_kwargs())
        watchers.append(AssetWatcher(name=f"{name}_poll", trigger=trigger))
    return Asset(name, watchers=watchers)

"""The assets that wake the flows, and their watchers; imported by DAG files at parse time (no I/O here).

One asset per watched source object, from the flow registry (``flows/specs.py``): ``flow_asset(flow)`` builds the
flow's asset — named by ``specs.EVENT_ASSETS`` — with a ``K3CloudAuditTrigger`` on the flow's form (K3Cloud → CRM
flows) or a ``FxiaokeChangeTrigger`` on its CRM object (CRM → K3Cloud flows). A DAG schedules on it with
``AssetOrTimeSchedule``; the push receiver rings the same asset by form / object.

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
from fxiaoke_k3cloud.flows.specs import FLOWS, FlowSpec, event_asset, event_source, flow_spec

K3CLOUD_AUDITED_DELIVERY_NOTICES = "k3cloud_audited_delivery_notices"
FXIAOKE_CHANGED_ACCOUNTS = "fxiaoke_changed_accounts"
FXIAOKE_CHANGED_ORDERS = "fxiaoke_changed_sales_orders"
#: AssetWatcher names that predate ``<asset>_poll`` (kept: Airflow knows the watcher by it).
WATCHER_NAMES = {K3CLOUD_AUDITED_DELIVERY_NOTICES: "k3cloud_delivery_notice_audits"}
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


def flow_asset(flow: str) -> Asset:
    """The asset that wakes flow ``flow``'s DAG: rung when its source object is audited (K3Cloud) or changed (CRM),
    by its watcher in the triggerer (mode ``poll``) or by a push."""
    return _asset(flow_spec(flow))


def _asset(spec: FlowSpec) -> Asset:
    name = event_asset(spec)
    if name is None:
        raise ConfigError(f"flow {spec.name!r}: its source {spec.source_object} has no change event; add it to "
                          f"EVENT_ASSETS in flows/specs.py (or schedule the DAG on its timetable only)")
    watchers = []
    if event_source(spec) == "k3cloud":
        if _mode("SYNC_K3CLOUD_EVENTS") == "poll":
            trigger = K3CloudAuditTrigger(name=name, form_id=spec.source_object,
                                          pacing=_pacing("SYNC_K3CLOUD", 5, 60).as_kwargs())
            watchers.append(AssetWatcher(name=WATCHER_NAMES.get(name, f"{name}_poll"), trigger=trigger))
    elif _mode("SYNC_FXIAOKE_EVENTS") == "poll":
        trigger = FxiaokeChangeTrigger(name=name, object_api_name=spec.source_object,
                                       pacing=_pacing("SYNC_FXIAOKE", 20, 120).as_kwargs())
        watchers.append(AssetWatcher(name=WATCHER_NAMES.get(name, f"{name}_poll"), trigger=trigger))
    return Asset(name, watchers=watchers)


def k3cloud_audited_delivery_notices() -> Asset:
    """Rung when K3Cloud audits (or, by push, un-audits) a delivery notice (= ``flow_asset("deliveries")``)."""
    return flow_asset("deliveries")


def fxiaoke_changed(object_api_name: str) -> Asset:
    """Rung when a CRM record of ``object_api_name`` is created or changed (the asset of the flow reading it)."""
    spec = next((s for s in FLOWS.values() if event_source(s) == "fxiaoke" and s.source_object == object_api_name), None)
    if spec is None:
        raise ConfigError(f"no flow reads CRM object {object_api_name!r} (flows/specs.py); nothing to wake")
    return _asset(spec)

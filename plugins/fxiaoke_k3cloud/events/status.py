"""Where each watcher stands and whether it has gone silent: read by the monitor page and the silent-watcher alert.

``watcher_states(store)`` returns one dict per watcher (shape kept stable; the monitor renders it)::

    {"name": "k3cloud_audited_delivery_notices",     # the trigger's name = its asset = its position key
     "source": "k3cloud",                             # k3cloud | fxiaoke
     "form": "SAL_DELIVERYNOTICE",                    # K3Cloud form id or CRM object api name
     "mode": "poll",                                  # poll | push | schedule (SYNC_*_EVENTS of this process)
     "expected": True,                                # mode == "poll": a triggerer should be running it
     "last_polled_ms": 1764700000000 | None,          # last recorded poll (``watch:<name>:polled``)
     "last_result": "ok" | "error" | None,
     "last_error": "TransportError" | None,           # the error class of the last recorded poll
     "position_ms": 1764699990000 | None,             # the newest change it has rung for (``watch:<name>``)
     "position_record_id": "100123" | None,
     "poll_s": 5.0,                                   # the interval in force now (business hours or not)
     "threshold_s": 300.0,                            # silent after this long without a recorded poll
     "seconds_since_poll": 12.3 | None,
     "silent": False}

A watcher records a good poll at most every ``heartbeat_s`` (30 s) and every failed one, so ``last_polled_ms``
lags up to 30 s behind a healthy watcher; the threshold is never below ``2 × 30 s + poll_s``. It is silent when
it is expected to run (mode ``poll``) and its last recorded poll — or, before any poll, nothing at all — is
older than the threshold. A watcher whose polls fail is *not* silent (the triggerer runs it; ``last_result`` is
``error``); the flow's own alerts and the monitor show the failing source.

Settings (read like ``events.assets``; set them for every component, as the compose file does):
``SYNC_K3CLOUD_EVENTS`` / ``SYNC_FXIAOKE_EVENTS``, the ``*_POLL_S`` intervals, and
``SYNC_WATCHER_SILENT_S`` — the threshold in seconds (default: ``max(300, 10 × the interval in force)``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from fxiaoke_k3cloud.audit import AuditStore
from fxiaoke_k3cloud.audit.schema import watermark
from fxiaoke_k3cloud.errors import ConfigError
from fxiaoke_k3cloud.events.pacing import Pacing
from fxiaoke_k3cloud.events.position import PREFIX
from fxiaoke_k3cloud.flows.specs import event_sources
from fxiaoke_k3cloud.flows.window import k3_local_ms
from fxiaoke_k3cloud.hooks.k3cloud_filter import F

SILENT_SETTING = "SYNC_WATCHER_SILENT_S"
HEARTBEAT_S = 30.0  # PollingWatcher's default heartbeat_s
MIN_SILENT_S = 300.0
SILENT_FACTOR = 10


@dataclass(frozen=True)
class WatcherConfig:
    """A watcher the deployment defines (events/assets.py), with the settings that drive it."""

    name: str
    source: str
    form: str
    mode_setting: str
    prefix: str
    poll_s: float
    off_hours_poll_s: float

    def mode(self) -> str:
        return os.environ.get(self.mode_setting, "poll").strip().lower() or "poll"

    def pacing(self) -> Pacing:
        try:
            return Pacing(poll_s=float(os.environ.get(f"{self.prefix}_POLL_S", self.poll_s)),
                          off_hours_poll_s=float(os.environ.get(f"{self.prefix}_OFF_HOURS_POLL_S", self.off_hours_poll_s)),
                          business_hours=os.environ.get("SYNC_BUSINESS_HOURS", "08:00-20:00"))
        except ValueError as exc:
            raise ConfigError(f"${self.prefix}_POLL_S / ${self.prefix}_OFF_HOURS_POLL_S must be numbers of seconds: {exc}") from None


#: Poll settings per source system: (mode setting, interval prefix, business-hours s, off-hours s), as events.assets.
_SOURCE_SETTINGS = {"k3cloud": ("SYNC_K3CLOUD_EVENTS", "SYNC_K3CLOUD", 5.0, 60.0),
                    "fxiaoke": ("SYNC_FXIAOKE_EVENTS", "SYNC_FXIAOKE", 20.0, 120.0)}

# One watcher per watched source object of the flow registry (the names events.assets gives them), read from the
# registry rather than from events.assets, so this module (imported by the api-server) does not pull in the
# trigger classes; tests/events/test_status.py checks that the two agree.
WATCHERS: tuple[WatcherConfig, ...] = tuple(
    WatcherConfig(asset, system, form, *_SOURCE_SETTINGS[system]) for system, form, asset in event_sources()
)


def silent_threshold_s(poll_s: float) -> float:
    """Seconds without a recorded poll after which a watcher counts as silent."""
    raw = os.environ.get(SILENT_SETTING, "").strip()
    if raw:
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"${SILENT_SETTING} must be a number of seconds, got {raw!r}") from None
        if value <= 0:
            raise ConfigError(f"${SILENT_SETTING} must be > 0 seconds, got {raw!r}")
    else:
        value = max(MIN_SILENT_S, SILENT_FACTOR * poll_s)
    return max(value, 2 * HEARTBEAT_S + poll_s)


def _rows(store: AuditStore) -> dict[str, tuple[int, str]]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(watermark.c.flow, watermark.c.value_ms, watermark.c.run_id)
                            .where(watermark.c.flow.like(PREFIX + "%"))).all()
    return {str(r.flow): (int(r.value_ms), str(r.run_id or "")) for r in rows}


def watcher_states(store: AuditStore, *, now_ms: int | None = None) -> list[dict[str, Any]]:
    """One dict per watcher of the deployment (see the module docstring for the shape), in a fixed order."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    rows = _rows(store)
    states = []
    for w in WATCHERS:
        mode = w.mode()
        poll_s = w.pacing().interval()
        threshold = silent_threshold_s(poll_s)
        polled = rows.get(f"{PREFIX}{w.name}:polled")
        position = rows.get(PREFIX + w.name)
        since = None if polled is None else max(0.0, (now_ms - polled[0]) / 1000)
        rid = position[1] if position else None
        states.append({
            "name": w.name, "source": w.source, "form": w.form, "mode": mode, "expected": mode == "poll",
            "last_polled_ms": polled[0] if polled else None,
            "last_result": None if polled is None else ("ok" if polled[1] == "ok" else "error"),
            "last_error": None if polled is None or polled[1] == "ok" else polled[1],
            "position_ms": position[0] if position else None,
            "position_record_id": None if rid is None else (rid[3:] if rid.startswith("id:") else rid),
            "poll_s": poll_s, "threshold_s": threshold, "seconds_since_poll": None if since is None else round(since, 1),
            "silent": mode == "poll" and (since is None or since > threshold),
        })
    return states


def pending_change(state: dict[str, Any], *, k3cloud_hook: Any = None, fxiaoke_hook: Any = None) -> dict[str, Any] | None:
    """The newest change at the source past the watcher's position — ``{"record": …, "at_ms": …}`` — or None.

    One call (``ExecuteBillQuery`` / ``data/query``, newest first, one row) with the hook of the watcher's source;
    a hook of the other source is not needed. Same-second changes with a lower id than the position are not seen
    (as by the watcher itself).
    """
    since_ms = state.get("position_ms") or 0
    if state["source"] == "k3cloud":
        # FApproveDate is compared in whole seconds on the wire: from the second after the position's.
        since = datetime.fromtimestamp(since_ms // 1000 + 1, tz=timezone.utc)
        pages = k3cloud_hook.execute_bill_query(
            state["form"], ["FID", "FBillNo", "FApproveDate"], (F("FDocumentStatus") == "C") & (F("FApproveDate") >= since),
            order_by=["FApproveDate DESC", "FID DESC"], page_size=1)
        rows = next(iter(pages), [])
        if not rows:
            return None
        return {"record": rows[0].get("FBillNo") or rows[0].get("FID"), "at_ms": k3_local_ms(rows[0].get("FApproveDate"))}
    pages = fxiaoke_hook.query_records(state["form"], [("last_modified_time", "GT", [since_ms])],
                                       [("last_modified_time", False)], fields=["name", "last_modified_time"], page_size=1)
    rows = next(iter(pages), [])
    return {"record": rows[0].get("name") or rows[0].get("_id"), "at_ms": rows[0].get("last_modified_time")} if rows else None

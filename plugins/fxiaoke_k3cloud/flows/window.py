"""Which time window a flow run covers: trigger params, the data interval, or the stored watermark."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from fxiaoke_k3cloud.errors import ConfigError

SHANGHAI = ZoneInfo("Asia/Shanghai")


def k3_local_ms(value: Any) -> int | None:
    """K3Cloud local datetime text (UTC+8, no offset) → epoch ms; None when empty or unparsable."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=SHANGHAI)
    return int(moment.timestamp() * 1000)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Window:
    """A half-open window ``[start, end)`` in UTC, where it came from, and how far it may move the watermark.

    ``advance_to`` is where the flow's watermark moves when the run succeeds, or None when this run must
    leave it alone (a backfill, or explicit ``since``/``until`` that do not start at the watermark).
    """

    start: datetime
    end: datetime
    source: str  # params | data_interval | backfill | watermark | first_sync | full_resync
    advance_to: datetime | None = None

    @property
    def start_ms(self) -> int:
        return to_ms(self.start)

    @property
    def end_ms(self) -> int:
        return to_ms(self.end)

    def as_xcom(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "source": self.source,
                "advance_to": self.advance_to.isoformat() if self.advance_to else None}

    @classmethod
    def from_xcom(cls, value: Mapping[str, Any]) -> "Window":
        advance = value.get("advance_to")
        return cls(datetime.fromisoformat(value["start"]), datetime.fromisoformat(value["end"]), value["source"],
                   datetime.fromisoformat(advance) if advance else None)


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def parse_moment(value: Any, *, name: str) -> datetime:
    """A trigger-form time: ISO 8601 (naive means Asia/Shanghai, as users there type it) or epoch ms."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().isdigit()):
        return from_ms(int(value))
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(
                f"param '{name}'={value!r} is not a time; use ISO 8601 like '2026-11-01T08:00:00+08:00' "
                "(no offset = Asia/Shanghai) or epoch milliseconds"
            ) from None
    else:
        raise ConfigError(f"param '{name}' must be an ISO 8601 time or epoch ms, got {type(value).__name__}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=SHANGHAI)
    return moment.astimezone(timezone.utc)


INCREMENTAL_RUN_TYPES = ("scheduled", "manual", "asset_triggered")


def resolve_window(
    *,
    params: Mapping[str, Any],
    data_interval_start: datetime | None,
    data_interval_end: datetime | None,
    run_after: datetime,
    watermark_ms: int | None,
    lookback: timedelta,
    run_type: str = "scheduled",
    now: datetime | None = None,
    index_lag: timedelta = timedelta(0),
) -> Window:
    """Decide the window of one run (the README's "Windows" section states the same model).

    * **Incremental runs** (scheduled, manual — with or without the logical date the UI trigger form
      pre-fills —, event-triggered): from the flow's watermark minus ``lookback`` (the epoch before the first
      sync) up to the earlier of ``now`` and the data-interval end (a manual run: up to ``now``). A failed or
      skipped interval is therefore covered by the next run that succeeds. An incremental run whose
      watermark is already past its interval end gets an empty window and succeeds.
    * **Backfills** read exactly their data interval and leave the watermark alone.
    * ``since``/``until`` params: ``until`` is clamped to ``now``; ``since`` defaults to the watermark. They
      move the watermark only when the window starts at or before it (no gap can be declared synced).
    * ``full_resync``: from the epoch to ``now``.

    The watermark never passes ``now - index_lag`` (``now`` = when the extract started; the lag is how long
    the source's search index may trail its writes).
    """
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    ceiling = now - index_lag
    has_interval = (data_interval_start is not None and data_interval_end is not None
                    and data_interval_start < data_interval_end)
    from_watermark = from_ms(watermark_ms) - lookback if watermark_ms is not None else None
    if params.get("since") or params.get("until"):
        start = parse_moment(params["since"], name="since") if params.get("since") else (from_watermark or EPOCH)
        end = min(parse_moment(params["until"], name="until"), now) if params.get("until") else now
        if start >= end:
            raise ConfigError(
                f"empty window: start {start.isoformat()} is not before end {end.isoformat()} (from params; "
                f"'until' is clamped to now, {now.isoformat()}); check the since/until params"
            )
        covers = (from_ms(watermark_ms) >= start) if watermark_ms is not None else start <= EPOCH
        return _utc(Window(start, end, "params", min(end, ceiling) if covers else None))
    if params.get("full_resync"):
        return _utc(Window(EPOCH, now, "full_resync", ceiling))
    if run_type == "backfill" and has_interval:
        end = min(data_interval_end, now)
        return _utc(Window(min(data_interval_start, end), end, "backfill", None))
    end = min(data_interval_end, now) if has_interval and run_type == "scheduled" else now
    if from_watermark is None:
        return _utc(Window(EPOCH, end, "first_sync", min(end, ceiling)))
    return _utc(Window(min(from_watermark, end), end, "watermark", min(end, ceiling)))


def _utc(w: Window) -> Window:
    return Window(w.start.astimezone(timezone.utc), w.end.astimezone(timezone.utc), w.source,
                  w.advance_to.astimezone(timezone.utc) if w.advance_to else None)

"""Which time window a flow run covers: trigger params, the data interval, or the stored watermark."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from fxiaoke_k3cloud.errors import ConfigError

SHANGHAI = ZoneInfo("Asia/Shanghai")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Window:
    """A half-open window ``[start, end)`` in UTC, and where it came from."""

    start: datetime
    end: datetime
    source: str  # params | data_interval | watermark | first_sync | full_resync

    @property
    def start_ms(self) -> int:
        return to_ms(self.start)

    @property
    def end_ms(self) -> int:
        return to_ms(self.end)

    def as_xcom(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "source": self.source}

    @classmethod
    def from_xcom(cls, value: Mapping[str, Any]) -> "Window":
        return cls(datetime.fromisoformat(value["start"]), datetime.fromisoformat(value["end"]), value["source"])


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


def resolve_window(
    *,
    params: Mapping[str, Any],
    data_interval_start: datetime | None,
    data_interval_end: datetime | None,
    run_after: datetime,
    watermark_ms: int | None,
    lookback: timedelta,
) -> Window:
    """Decide the window of one run.

    Order of precedence: explicit ``since``/``until`` params; ``full_resync``; a real data interval (scheduled
    runs and backfills) widened by ``lookback``; otherwise (manual runs have no data interval in Airflow 3,
    ``dags test`` gives a zero-width one) from the stored watermark to the run time. A first sync with no
    watermark starts at the epoch.
    """
    has_interval = data_interval_start is not None and data_interval_end is not None and data_interval_start < data_interval_end
    default_end = data_interval_end if has_interval else run_after
    if params.get("since") or params.get("until"):
        start = parse_moment(params["since"], name="since") if params.get("since") else None
        end = parse_moment(params["until"], name="until") if params.get("until") else default_end
        if start is None:
            start = from_ms(watermark_ms) - lookback if watermark_ms is not None else EPOCH
        window = Window(start, end, "params")
    elif params.get("full_resync"):
        window = Window(EPOCH, default_end, "full_resync")
    elif has_interval:
        window = Window(data_interval_start - lookback, data_interval_end, "data_interval")
    elif watermark_ms is not None:
        window = Window(from_ms(watermark_ms) - lookback, run_after, "watermark")
    else:
        window = Window(EPOCH, run_after, "first_sync")
    if window.start >= window.end:
        raise ConfigError(
            f"empty window: start {window.start.isoformat()} is not before end {window.end.isoformat()} "
            f"(from {window.source}); check the since/until params"
        )
    return Window(window.start.astimezone(timezone.utc), window.end.astimezone(timezone.utc), window.source)

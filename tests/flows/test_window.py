"""How a run's window is chosen: params, data interval, watermark."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from fxiaoke_k3cloud.errors import ConfigError
from fxiaoke_k3cloud.flows.window import EPOCH, resolve_window, to_ms

UTC = timezone.utc
T0 = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 1, 0, 15, tzinfo=UTC)
NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
LB = timedelta(minutes=5)


def resolve(params=None, start=None, end=None, watermark=None):
    return resolve_window(params=params or {}, data_interval_start=start, data_interval_end=end,
                          run_after=NOW, watermark_ms=watermark, lookback=LB)


def test_scheduled_run_uses_the_data_interval_widened_by_lookback():
    w = resolve(start=T0, end=T1)
    assert (w.start, w.end, w.source) == (T0 - LB, T1, "data_interval")


def test_manual_run_without_interval_starts_at_the_watermark():
    w = resolve(watermark=to_ms(T1))
    assert (w.start, w.end, w.source) == (T1 - LB, NOW, "watermark")


def test_dags_test_zero_width_interval_counts_as_manual():
    w = resolve(start=NOW, end=NOW, watermark=to_ms(T1))
    assert w.source == "watermark" and w.start == T1 - LB


def test_first_sync_without_watermark_starts_at_epoch():
    w = resolve()
    assert (w.start, w.source) == (EPOCH, "first_sync")


def test_params_override_everything_and_naive_times_are_shanghai():
    w = resolve(params={"since": "2026-11-01T08:00:00", "until": "2026-11-01T09:00:00+08:00"}, start=T0, end=T1)
    assert w.start == datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
    assert w.end == datetime(2026, 11, 1, 1, 0, tzinfo=UTC)
    assert w.source == "params"


def test_epoch_ms_params_accepted():
    w = resolve(params={"since": str(to_ms(T0)), "until": to_ms(T1)})
    assert (w.start, w.end) == (T0, T1)


def test_full_resync_starts_at_epoch_and_ends_at_interval_end():
    w = resolve(params={"full_resync": True}, start=T0, end=T1, watermark=to_ms(T1))
    assert (w.start, w.end, w.source) == (EPOCH, T1, "full_resync")


@pytest.mark.parametrize("params, message", [
    ({"since": "yesterday"}, "is not a time"),
    ({"since": "2026-11-02T00:00:00Z", "until": "2026-11-01T00:00:00Z"}, "empty window"),
])
def test_bad_params_fail_with_a_clear_message(params, message):
    with pytest.raises(ConfigError, match=message):
        resolve(params=params)


def test_window_round_trips_through_xcom():
    from fxiaoke_k3cloud.flows.window import Window

    w = resolve(start=T0, end=T1)
    assert Window.from_xcom(w.as_xcom()) == w


def test_run_type_is_stored_as_airflows_plain_value():
    from types import SimpleNamespace

    from airflow.utils.types import DagRunType

    from fxiaoke_k3cloud.flows.steps import _run_meta

    run = SimpleNamespace(run_id="backfill__x", run_type=DagRunType.BACKFILL_JOB, run_after=NOW)
    assert _run_meta({"dag_run": run}) == ("backfill__x", "backfill", NOW)

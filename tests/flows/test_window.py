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


def resolve(params=None, start=None, end=None, watermark=None, run_type="scheduled", now=NOW, lag=timedelta(0)):
    return resolve_window(params=params or {}, data_interval_start=start, data_interval_end=end,
                          run_after=NOW, watermark_ms=watermark, lookback=LB, run_type=run_type, now=now,
                          index_lag=lag)


def test_scheduled_run_reads_from_the_watermark_to_its_interval_end():
    w = resolve(start=T0, end=T1, watermark=to_ms(T0))
    assert (w.start, w.end, w.source, w.advance_to) == (T0 - LB, T1, "watermark", T1)


def test_a_failed_interval_is_covered_by_the_next_scheduled_run():
    """The run of [T0, T1) failed: the watermark stayed at T0; the run of [T1, T2) reads from T0."""
    t2 = T1 + timedelta(minutes=15)
    w = resolve(start=T1, end=t2, watermark=to_ms(T0))
    assert (w.start, w.end) == (T0 - LB, t2)


def test_scheduled_run_never_reads_past_now():
    w = resolve(start=NOW - timedelta(minutes=5), end=NOW + timedelta(minutes=10), watermark=to_ms(T0))
    assert w.end == NOW


def test_scheduled_run_with_watermark_past_its_interval_has_an_empty_window_not_an_error():
    w = resolve(start=T0, end=T1, watermark=to_ms(NOW))
    assert w.start == w.end == T1 and w.advance_to == T1


def test_manual_run_without_interval_starts_at_the_watermark():
    w = resolve(watermark=to_ms(T1), run_type="manual")
    assert (w.start, w.end, w.source) == (T1 - LB, NOW, "watermark")


def test_ui_trigger_with_the_prefilled_logical_date_reads_up_to_now():
    """The trigger form pre-fills a logical date: the run gets the previous slot as its data interval."""
    w = resolve(start=T0, end=T1, watermark=to_ms(T1), run_type="manual")
    assert (w.start, w.end, w.advance_to) == (T1 - LB, NOW, NOW)


def test_event_triggered_run_reads_from_the_watermark_to_now():
    w = resolve(watermark=to_ms(T1), run_type="asset_triggered")
    assert (w.start, w.end) == (T1 - LB, NOW)


def test_dags_test_zero_width_interval_counts_as_manual():
    w = resolve(start=NOW, end=NOW, watermark=to_ms(T1), run_type="manual")
    assert w.source == "watermark" and w.start == T1 - LB


def test_backfill_reads_exactly_its_interval_and_leaves_the_watermark():
    w = resolve(start=T0, end=T1, watermark=to_ms(NOW), run_type="backfill")
    assert (w.start, w.end, w.source, w.advance_to) == (T0, T1, "backfill", None)


def test_first_sync_without_watermark_starts_at_epoch():
    w = resolve(run_type="manual")
    assert (w.start, w.source, w.advance_to) == (EPOCH, "first_sync", NOW)


def test_the_watermark_never_passes_now_less_the_index_lag():
    w = resolve(watermark=to_ms(T1), run_type="manual", lag=timedelta(seconds=5))
    assert w.end == NOW and w.advance_to == NOW - timedelta(seconds=5)


def test_params_override_everything_and_naive_times_are_shanghai():
    w = resolve(params={"since": "2026-11-01T08:00:00", "until": "2026-11-01T09:00:00+08:00"}, start=T0, end=T1)
    assert w.start == datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
    assert w.end == datetime(2026, 11, 1, 1, 0, tzinfo=UTC)
    assert w.source == "params"


def test_until_in_the_future_is_clamped_to_now():
    w = resolve(params={"until": "2030-01-01T00:00:00Z"}, watermark=to_ms(T1), run_type="manual")
    assert (w.start, w.end, w.advance_to) == (T1 - LB, NOW, NOW)


def test_params_window_after_the_watermark_does_not_move_it():
    """since past the watermark: moving the watermark would declare [watermark, since) synced."""
    w = resolve(params={"since": T1.isoformat()}, watermark=to_ms(T0), run_type="manual")
    assert w.start == T1 and w.advance_to is None
    covering = resolve(params={"since": (T0 - LB).isoformat()}, watermark=to_ms(T0), run_type="manual")
    assert covering.advance_to == NOW


def test_epoch_ms_params_accepted():
    w = resolve(params={"since": str(to_ms(T0)), "until": to_ms(T1)})
    assert (w.start, w.end) == (T0, T1)


def test_full_resync_starts_at_epoch_and_ends_now():
    w = resolve(params={"full_resync": True}, start=T0, end=T1, watermark=to_ms(T1))
    assert (w.start, w.end, w.source) == (EPOCH, NOW, "full_resync")


@pytest.mark.parametrize("params, message", [
    ({"since": "yesterday"}, "is not a time"),
    ({"since": "2026-11-02T00:00:00Z", "until": "2026-11-01T00:00:00Z"}, "empty window"),
    ({"since": "2030-01-01T00:00:00Z"}, "empty window"),
])
def test_bad_params_fail_with_a_clear_message(params, message):
    with pytest.raises(ConfigError, match=message):
        resolve(params=params)


def test_window_round_trips_through_xcom():
    from fxiaoke_k3cloud.flows.window import Window

    for w in (resolve(start=T0, end=T1), resolve(start=T0, end=T1, run_type="backfill")):
        assert Window.from_xcom(w.as_xcom()) == w


def test_run_type_is_stored_as_airflows_plain_value():
    from types import SimpleNamespace

    from airflow.utils.types import DagRunType

    from fxiaoke_k3cloud.flows.steps import _run_meta

    run = SimpleNamespace(run_id="backfill__x", run_type=DagRunType.BACKFILL_JOB, run_after=NOW)
    assert _run_meta({"dag_run": run}) == ("backfill__x", "backfill", NOW)

"""What every sync DAG shares: schedule, retry policy, trigger params, the report's alert callback.

Imported by DAG files at parse time: it must stay cheap (airflow.sdk and the standard library only).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param

# Early, so a backfill can reach old windows; catchup stays off, so nothing runs by itself for the past.
START_DATE = pendulum.datetime(2020, 1, 1, tz="Asia/Shanghai")

DEFAULT_ARGS: dict[str, Any] = {
    "retries": 3,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=10),
    "execution_timeout": timedelta(minutes=30),
}


def every_15_minutes() -> CronDataIntervalTimetable:
    """Real data intervals (Airflow 3's default cron timetable has none), in China time."""
    return CronDataIntervalTimetable("*/15 * * * *", timezone="Asia/Shanghai")


def window_params(*, ids_of: str | None, full_resync: str, dry_run: str, **extra: Param) -> dict[str, Param]:
    """The trigger form of a flow: window override, optional id list, full resync, dry run, extras.

    Every param is optional: its schema admits ``null``, which is what makes Airflow's trigger form show it
    without the "required" mark (the steps read an empty value as the default).
    """
    backfill = " In a backfill: leave empty, or it overrides every backfill run's dates."
    params = {
        "since": Param(None, type=["null", "string"],
                       description="Optional window start (ISO 8601, no offset = Asia/Shanghai, or epoch ms)." + backfill),
        "until": Param(None, type=["null", "string"],
                       description="Optional window end (ISO 8601 or epoch ms)." + backfill),
    }
    if ids_of:
        params["ids"] = Param([], type=["null", "array"], items={"type": "string"},
                              description=f"Optional: only these {ids_of} (in a backfill: in every run, whatever the dates)")
    params["full_resync"] = Param(False, type=["null", "boolean"], description=f"Optional. {full_resync}")
    params["dry_run"] = Param(False, type=["null", "boolean"], description=f"Optional. {dry_run}")
    params.update(extra)
    return params


def alert_on_failure(context: Any) -> None:
    """on_failure_callback of a report task: one digest per run (see fxiaoke_k3cloud.alerts)."""
    from fxiaoke_k3cloud.alerts import on_report_failure

    on_report_failure(context)

"""
### Event watchers' health: an alert when a watcher has gone silent

Every 5 minutes this DAG reads where each event watcher stands (`fxiaoke_k3cloud.events.status`) and, for a
watcher that should be polling (`SYNC_*_EVENTS=poll`) but has recorded no poll for longer than its threshold
(`SYNC_WATCHER_SILENT_S`, default max(300 s, 10 × its interval)), sends **one** alert per silent spell to the
alert recipients (`SYNC_ALERT_OPEN_USER_IDS`, `SYNC_ALERT_WEBHOOK_CONN_ID`): which watcher, when it last polled,
whether changes are waiting at the source (one query), and what to do — usually: the triggerer is not running.
Meanwhile the flows' 15-minute schedule keeps syncing. See docs/events.md, *Operations*.

**Tasks**: `check_watchers` (its XCom: the state of every watcher, as the monitor shows it).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, dag, task


@dag(
    dag_id="sync_watchers",
    schedule=CronDataIntervalTimetable("*/5 * * * *", timezone="Asia/Shanghai"),
    start_date=pendulum.datetime(2024, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30), "execution_timeout": timedelta(minutes=4)},
    tags=["fxiaoke", "k3cloud", "ops", "events"],
    doc_md=__doc__,
)
def sync_watchers():
    @task
    def check_watchers() -> list[dict]:
        from fxiaoke_k3cloud import alerts  # imported on use: parsing stays cheap

        return alerts.check_watchers()

    check_watchers()


sync_watchers()

"""Run one flow the way an Airflow DAG run does — task by task, ``report`` always last — with the context a
scheduled run, a UI trigger or a backfill gives its tasks; in this process or as a separate Python process
(``python -m sync_state.flowrun '<json>'``), so tests can run two of them at once as two workers would.

The step functions are the ones the DAG files call; only the scheduler is stood in for.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

FULL_PARAMS = {"since": None, "until": None, "ids": [], "full_resync": False, "dry_run": False,
               "void_action": "report"}


class FakeTI:
    """What ``report`` reads: the XCom of the tasks that finished in this run."""

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_pull(self, task_ids: str) -> Any:
        return self.xcom.get(task_ids)


def tasks(flow: str) -> list[tuple[str, Any]]:
    from fxiaoke_k3cloud.flows import deliveries, steps

    if flow == "deliveries":
        return [("extract_deliveries", lambda up, ctx: deliveries.extract("deliveries", ctx)),
                ("load_deliveries",  # transform and load in one task, as the DAG runs them
                 lambda up, ctx: deliveries.load("deliveries", deliveries.transform("deliveries", up, ctx), ctx))]
    from fxiaoke_k3cloud.flows.specs import flow_spec, resolve_step

    spec = flow_spec(flow)
    first, *rest = spec.steps  # the registry's steps, as the DAG factory runs them
    chain = [(f"extract_{flow}", lambda up, ctx: resolve_step(first)(flow, ctx))]
    for step in rest:
        chain.append((f"{step}_{flow}", lambda up, ctx, fn=resolve_step(step): fn(flow, up, ctx)))
    return chain


def run_flow(flow: str, *, run_id: str, run_type: str = "scheduled", interval: tuple[Any, Any] | None = None,
             params: dict[str, Any] | None = None) -> dict[str, Any]:
    """One DAG run; returns {"ok": report succeeded, "failed_task": id or None, "error": text, "xcom": {...}}."""
    from fxiaoke_k3cloud.flows import steps

    start, end = (_moment(interval[0]), _moment(interval[1])) if interval else (None, None)
    ti = FakeTI()
    ctx: dict[str, Any] = {
        "params": {**FULL_PARAMS, **(params or {})},
        "dag_run": SimpleNamespace(run_id=run_id, run_type=run_type, run_after=end or datetime.now(timezone.utc)),
        "run_id": run_id, "data_interval_start": start, "data_interval_end": end, "ti": ti,
    }
    upstream: Any = None
    failed, error = None, None
    for task_id, fn in tasks(flow):
        try:
            upstream = fn(upstream, ctx)
        except Exception as exc:  # noqa: BLE001 - a failed task ends the run's chain, report still runs
            failed, error = task_id, f"{type(exc).__name__}: {exc}"
            break
        ti.xcom[task_id] = upstream
    ok = True
    try:
        steps.report(flow, ctx)
    except Exception as exc:  # noqa: BLE001
        ok, error = False, error or f"{type(exc).__name__}: {exc}"
    return {"ok": ok and failed is None, "failed_task": failed, "error": error,
            "xcom": json.loads(json.dumps(ti.xcom, default=str))}


def _moment(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


if __name__ == "__main__":
    args = json.loads(sys.argv[1])
    result = run_flow(args.pop("flow"), **args)
    print("RESULT " + json.dumps(result))

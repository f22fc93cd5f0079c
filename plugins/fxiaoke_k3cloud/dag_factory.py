"""Build a sync flow's DAG from its registry entry and the stages its DAG file lists.

A flow DAG file says what a user sees in the UI — the DAG id, schedule, params, and each task's id and pool — and
this module wires the rest the same way for every flow: the stages run in order, each one calling
``step(flow, <previous stage's result>, context)`` (the first stage gets no previous result), then ``report``
runs whatever happened (``trigger_rule="all_done"``) with the alert callback. When the first step's result says
``nothing_to_do`` (an idle scheduled run), the later stages are skipped, so the run starts two task processes (plus any stage marked ``always``, such
as the write-back, which runs in idle runs too).

A stage may run several steps in one task (``Stage("load_deliveries", (transform, load))``): they run in order in
one task process, each given the previous one's result exactly as separate stages would be (and the rest of a first
stage is skipped when its first step found nothing to do). That saves a task start-up and a scheduler hand-over
(~2 s on the audit → CRM path); the price is that a retry of the task re-runs all its steps (each step is
idempotent on a re-run: the stage table is replaced, outcomes count by their last row, writes plan from the id map).

Contracts that used to be conventions are checked when the DAG file is parsed, so a mismatch is an import error
in the UI instead of silently missing alerts or reports:

* the DAG id must be the registry's (``FlowSpec.dag_id``) — alerts and re-drive find a flow's DAG by it;
* the stages must include ``extract_<flow>`` and ``load_<flow>`` — ``report`` reads their XCom;
* the stages run the registry's steps (``FlowSpec.steps``) — re-drive runs those same steps in-process.

Imported by DAG files at parse time: it must stay cheap (airflow.sdk, the standard library and the registry).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from airflow.sdk import DAG, task
from airflow.sdk.exceptions import DownstreamTasksSkipped

from fxiaoke_k3cloud.dag_common import DEFAULT_ARGS, START_DATE, alert_on_failure
from fxiaoke_k3cloud.errors import ConfigError
from fxiaoke_k3cloud.flows.specs import flow_spec, resolve_step


@dataclass(frozen=True)
class Stage:
    """One task of a flow: its id in the UI, the step it runs (``module:function`` or a name in ``steps``), or a
    tuple of steps run in order in this one task (fused: each later one gets the previous result)."""

    task_id: str
    step: str | tuple[str, ...]
    pool: str | None = None
    #: Runs in idle runs too (after earlier stages were skipped), given the latest result there is — e.g. the
    #: write-back, which refreshes K3Cloud statuses whether or not the CRM changed. Only after the others.
    always: bool = False

    @property
    def steps(self) -> tuple[str, ...]:
        """The step names this task runs, in order."""
        return (self.step,) if isinstance(self.step, str) else tuple(self.step)


#: Slots of the ``k3cloud_api`` pool a flow's load task holds: the K3Cloud requests it may have in flight at once
#: (it sends min(this, the connection's ``max_in_flight``)). The pool must have at least this many slots, or the
#: task never starts; ``SYNC_K3_LOAD_POOL_SLOTS`` lowers it for a smaller pool (read when the DAG file is parsed).
def _load_pool_slots() -> int:
    raw = os.environ.get("SYNC_K3_LOAD_POOL_SLOTS", "4").strip()
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"SYNC_K3_LOAD_POOL_SLOTS must be a whole number ≥ 1 (slots of the k3cloud_api pool a "
                          f"load task holds), got {raw!r}")
    return int(raw)


LOAD_POOL_SLOTS = _load_pool_slots()


def _pool_args(flow: str, stage: Stage) -> dict[str, Any]:
    if not stage.pool:
        return {}
    if stage.pool == "k3cloud_api" and stage.task_id == f"load_{flow}" and LOAD_POOL_SLOTS > 1:
        return {"pool": stage.pool, "pool_slots": LOAD_POOL_SLOTS}
    return {"pool": stage.pool}


def required_task_ids(flow: str) -> set[str]:
    """The task ids the report reads XCom from (see ``steps.report``)."""
    return {f"extract_{flow}", f"load_{flow}"}


def _idle(result: Any) -> bool:
    """The first step found nothing to do (an idle scheduled run; it moved the watermark itself)."""
    return isinstance(result, dict) and bool(result.get("nothing_to_do"))


def _stage_task(flow: str, stage: Stage, *, first: bool, later: list[str], earlier: list[str] = ()):
    extra = {"trigger_rule": "none_failed"} if stage.always else {}  # runs when the earlier stages were skipped

    @task(task_id=stage.task_id, **_pool_args(flow, stage), **extra)
    def run_stage(upstream: dict | None = None, **context) -> dict:
        # Imported when the task runs (DAG parsing stays cheap): the run's API calls and what stopped a stage.
        from fxiaoke_k3cloud.flows.run_notes import task_notes
        from fxiaoke_k3cloud.flows.steps import open_store

        fns = [resolve_step(name) for name in stage.steps]
        if stage.always:  # the latest earlier result (the first stage's when the others were skipped)
            upstream = next((r for r in (context["ti"].xcom_pull(task_ids=t) for t in reversed(earlier)) if r), None)
        with task_notes(flow, context, open_store):
            for i, fn in enumerate(fns):  # a fused stage: each step gets the previous one's result
                result = fn(flow, context) if first and i == 0 else fn(flow, upstream, context)
                if first and i == 0 and _idle(result):
                    break  # the rest of this stage is skipped like the later stages
                upstream = result
        if first and _idle(result) and later:
            # Short-circuit: the first step found nothing to do (and moved the watermark itself); the later
            # steps are skipped without starting their task processes. The result is pushed by hand because
            # Airflow pushes a return value only when the task returns.
            context["ti"].xcom_push(key="return_value", value=result)
            raise DownstreamTasksSkipped(tasks=later)
        return result

    return run_stage


def _report_task(flow: str):
    @task(task_id="report", retries=0, trigger_rule="all_done", on_failure_callback=alert_on_failure)
    def report(**context) -> dict:
        return resolve_step("report")(flow, context)

    return report


def flow_dag(flow: str, *, dag_id: str, schedule: Any, params: dict, stages: list[Stage], tags: list[str],
             doc_md: str | None, max_active_runs: int = 1) -> DAG:
    """The DAG of registry flow ``flow``: ``stages`` in order, then ``report``."""
    spec = flow_spec(flow)
    if dag_id != spec.dag_id:
        raise ConfigError(f"DAG {dag_id!r} runs flow {flow!r}, whose registry entry names DAG {spec.dag_id!r}; "
                          f"make them agree (flows/specs.py) or alerts and re-drive will not find this DAG")
    missing = required_task_ids(flow) - {s.task_id for s in stages}
    if missing:
        raise ConfigError(f"DAG {dag_id!r} lacks task(s) {', '.join(sorted(missing))}: the report reads their results")
    if any(not s.steps or not all(isinstance(n, str) and n for n in s.steps) for s in stages):
        raise ConfigError(f"DAG {dag_id!r}: every stage names a step, or a non-empty tuple of steps")
    flat = [name for s in stages for name in s.steps]  # a fused stage's steps count one by one
    if tuple(flat) != spec.steps:
        raise ConfigError(f"DAG {dag_id!r} runs steps {flat}, the registry's flow {flow!r} "
                          f"{list(spec.steps)}; re-drive runs the registry's, so make them agree")
    if len({s.task_id for s in stages}) != len(stages):
        raise ConfigError(f"DAG {dag_id!r} lists a task id twice")
    if stages[0].always or any(a.always and not b.always for a, b in zip(stages, stages[1:])):
        raise ConfigError(f"DAG {dag_id!r}: stages with always=True come last, after the first stage")
    with DAG(dag_id=dag_id, schedule=schedule, start_date=START_DATE, catchup=False,
             max_active_runs=max_active_runs, default_args=DEFAULT_ARGS, params=params, tags=tags,
             doc_md=doc_md) as dag:
        result = None
        skipped = [s.task_id for s in stages[1:] if not s.always]  # what an idle run skips
        for i, stage in enumerate(stages):
            op = _stage_task(flow, stage, first=i == 0, later=skipped if i == 0 else [],
                             earlier=[s.task_id for s in stages[:i]])
            if stage.always:
                task_op = op()
                result >> task_op
                result = task_op
            else:
                result = op() if i == 0 else op(result)
        result >> _report_task(flow)()
    return dag

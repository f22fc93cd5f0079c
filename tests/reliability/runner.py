"""Run the three flows the way the scheduler would: task by task, each task retried on failure (the DAGs'
``retries``), the ``report`` task always run (``trigger_rule=all_done``), and a failed run followed by a new run,
up to a bound, until a run settles (its report succeeds).

The step functions are the ones the DAG files call, so everything below the task boundary is production code;
only the scheduler is stood in for. Retry delays are not waited (the hooks' backoff caps are lowered by
:func:`fast_backoff`), which changes timing, not behaviour.
"""

from __future__ import annotations

import logging
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any, Callable, Iterator

log = logging.getLogger(__name__)

TASK_RETRIES = 3  # default_args["retries"] of every DAG
CUSTOMERS, ORDERS, DELIVERIES = "customers", "orders", "deliveries"


class FakeTI:
    """The task instance as ``report`` sees it: XCom of the tasks that finished in this run."""

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_pull(self, task_ids: str) -> Any:
        return self.xcom.get(task_ids)


@dataclass
class FlowStats:
    runs: int = 0
    settled_runs: int = 0
    task_attempts: int = 0
    task_retries: int = 0  # task attempts after a failed attempt of the same task in the same run
    failed_runs: int = 0
    errors: Counter = field(default_factory=Counter)  # exception class → count (task failures)

    def as_dict(self) -> dict[str, Any]:
        return {"runs": self.runs, "failed_runs": self.failed_runs, "task_attempts": self.task_attempts,
                "task_retries": self.task_retries, "task_errors": dict(self.errors)}


@contextmanager
def fast_backoff(max_wait_s: float = 0.02) -> Iterator[None]:
    """Cap the hooks' retry waits (module constants read at call time) for the duration of a chaos run."""
    from fxiaoke_k3cloud.hooks import fxiaoke, k3cloud_transport

    saved = (fxiaoke.RETRY_WAIT_MAX_S, fxiaoke.RETRY_JITTER_S, k3cloud_transport.RETRY_MAX_WAIT_S)
    fxiaoke.RETRY_WAIT_MAX_S, fxiaoke.RETRY_JITTER_S, k3cloud_transport.RETRY_MAX_WAIT_S = max_wait_s, 0.0, max_wait_s
    try:
        yield
    finally:
        fxiaoke.RETRY_WAIT_MAX_S, fxiaoke.RETRY_JITTER_S, k3cloud_transport.RETRY_MAX_WAIT_S = saved


def _tasks(flow: str) -> list[tuple[str, Callable[[Any, dict[str, Any]], Any]]]:
    """(task id, fn(upstream xcom, context)) in DAG order, report excluded."""
    from fxiaoke_k3cloud.flows import deliveries, steps

    if flow == DELIVERIES:
        return [("extract_deliveries", lambda up, ctx: deliveries.extract("deliveries", ctx)),
                ("load_deliveries",  # transform and load in one task, as the DAG runs them
                 lambda up, ctx: deliveries.load("deliveries", deliveries.transform("deliveries", up, ctx), ctx))]
    chain: list[tuple[str, Callable[[Any, dict[str, Any]], Any]]] = [
        (f"extract_{flow}", lambda up, ctx: steps.extract(flow, ctx))]
    if flow == ORDERS:
        chain.append(("sync_customers", lambda up, ctx: steps.sync_customers(flow, up, ctx)))
    chain += [(f"transform_{flow}", lambda up, ctx: steps.transform(flow, up, ctx)),
              (f"load_{flow}", lambda up, ctx: steps.load(flow, up, ctx))]
    return chain


class Scheduler:
    """Runs flows with task retries and run re-tries; keeps per-flow statistics."""

    def __init__(self, *, task_retries: int = TASK_RETRIES, max_runs: int = 8,
                 between_attempts: Callable[[], None] | None = None) -> None:
        self.task_retries = task_retries
        self.max_runs = max_runs
        self.stats: dict[str, FlowStats] = {}
        self.between_attempts = between_attempts  # e.g. clear client caches as a new worker process would
        self._seq = 0

    def run_once(self, flow: str, **params: Any) -> bool:
        """One DAG run; True when its report succeeded."""
        from fxiaoke_k3cloud.flows import steps

        stats = self.stats.setdefault(flow, FlowStats())
        stats.runs += 1
        self._seq += 1
        now = datetime.now(timezone.utc)
        ti = FakeTI()
        ctx: dict[str, Any] = {
            "params": {"since": None, "until": None, "ids": [], "full_resync": False, "dry_run": False, **params},
            "dag_run": SimpleNamespace(run_id=f"manual__chaos_{flow}_{self._seq}", run_type="manual", run_after=now),
            "ti": ti,
        }
        upstream: Any = None
        for task_id, fn in _tasks(flow):
            upstream = self._attempts(stats, task_id, fn, upstream, ctx)
            if upstream is None:
                break
            ti.xcom[task_id] = upstream
        try:
            steps.report(flow, ctx)  # retries=0 in the DAGs
        except Exception as exc:  # noqa: BLE001 - a red report means "run again", as an operator would
            stats.failed_runs += 1
            stats.errors[f"report: {type(exc).__name__}"] += 1
            log.info("%s run %s: report failed: %s", flow, self._seq, exc)
            return False
        stats.settled_runs += 1
        return True

    def _attempts(self, stats: FlowStats, task_id: str, fn: Callable[[Any, dict[str, Any]], Any], upstream: Any,
                  ctx: dict[str, Any]) -> Any:
        for attempt in range(self.task_retries + 1):
            stats.task_attempts += 1
            if attempt:
                stats.task_retries += 1
                if self.between_attempts:
                    self.between_attempts()
            try:
                return fn(upstream, ctx)
            except Exception as exc:  # noqa: BLE001 - the scheduler retries whatever the task raised
                stats.errors[f"{task_id}: {type(exc).__name__}"] += 1
                log.info("%s attempt %s failed: %s: %s", task_id, attempt + 1, type(exc).__name__, exc)
                if type(exc).__name__ == "AirflowFailException":  # Airflow does not retry these
                    break
        return None

    def settle(self, flow: str, **params: Any) -> bool:
        """Run until a run's report succeeds, at most ``max_runs`` runs."""
        for _ in range(self.max_runs):
            if self.run_once(flow, **params):
                return True
        return False

"""What a flow's tasks leave on their run's ``sync_run`` row for the report step and the console.

* **API calls**: every task (``dag_factory`` wraps each stage in :func:`task_notes`) adds the calls its process
  sent, per system and path (``hooks.call_ledger``), to the run's ``api_calls``; the report step adds its own
  (for a re-drive, which runs every step in one process, that is all of them). The console sums them per day.
* **What stopped a task**: a stage that raises leaves its error on the open row (``note_run_message``), so the
  report says *that* — e.g. the configuration error and what to fix — instead of "load did not finish".

Recording never fails a task: a store that cannot be written is logged and the task's own outcome stands.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from fxiaoke_k3cloud.errors import is_config_error
from fxiaoke_k3cloud.hooks import call_ledger

log = logging.getLogger(__name__)

#: Appended to a stopped run's message: nothing is lost.
RETRIED = "records not written are retried by the next run"


def _run_id(context: Mapping[str, Any]) -> str:
    dag_run = context.get("dag_run")
    return str(getattr(dag_run, "run_id", None) or context.get("run_id") or "manual")


def stopped_message(task_id: str, exc: BaseException) -> str:
    """One line saying which task stopped and why; a configuration error says it is one (no retries)."""
    text = str(exc).strip() or type(exc).__name__
    if is_config_error(exc):
        return f"{task_id} stopped on a configuration error (not retried): {text} — fix it, then run again; {RETRIED}"
    return f"{task_id} failed: {type(exc).__name__}: {text}; {RETRIED}"


def record_calls(store: Any, flow: str, run_id: str) -> None:
    """Add the API calls this process sent since the last take to the run of ``flow`` / ``run_id``."""
    calls = call_ledger.take()
    if not calls:
        return
    try:
        if not store.add_api_calls(flow, run_id, calls):
            log.info("%s: no run row for %s yet; %s API call(s) not recorded", flow, run_id,
                     sum(int(c["total"]) for c in calls.values()))
    except Exception as exc:  # noqa: BLE001 - bookkeeping must not fail the task
        log.warning("%s: API calls of run %s not recorded (%s: %s)", flow, run_id, type(exc).__name__, exc)


@contextmanager
def task_notes(flow: str, context: Mapping[str, Any], open_store: Any) -> Iterator[None]:
    """Around one stage of a flow's DAG: record its API calls, and what stopped it if it raises."""
    call_ledger.take()  # calls made in this process before the task belong to no run of this flow
    run_id = _run_id(context)
    try:
        yield
    except BaseException as exc:
        ti = context.get("ti")
        _note(flow, run_id, open_store, stopped_message(str(getattr(ti, "task_id", None) or flow), exc))
        raise
    else:
        _note(flow, run_id, open_store, None)


def _note(flow: str, run_id: str, open_store: Any, message: str | None) -> None:
    try:
        store = open_store()
        record_calls(store, flow, run_id)
        if message is not None:
            store.note_run_message(flow, run_id, message)
    except Exception as exc:  # noqa: BLE001 - bookkeeping must not hide the task's own outcome
        log.warning("%s: run %s notes not recorded (%s: %s)", flow, run_id, type(exc).__name__, exc)


def close_unextracted(flow: str, store: Any, run_id: str) -> str:
    """The report of a run whose extract never finished: close its row (if it got one) as failed; the message."""
    message = f"{flow}: extract did not finish; nothing was synced (see its log)"
    record_calls(store, flow, run_id)
    run_pk = store.run_pk_of(flow, run_id)
    if run_pk is None:
        return message
    noted = store.run_summary(run_pk).get("message")
    if store.run_status(run_pk) == "running":
        store.finish_run(run_pk, "failed", None, noted or message)
    return f"{flow}: {noted}" if noted else message

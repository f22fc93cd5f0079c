"""Load, the pipeline's engine: up to N chunks' K3Cloud calls in flight, each chunk in its own writer thread.

The main thread plans a chunk (the store), hands it to :class:`Writers`, and persists chunks whose calls
finished — while up to N other chunks' calls are in flight. Only writer threads use the hook (one chunk per
thread: within a chunk the calls keep their order — renumbers, creates, updates); only the main thread uses
the store. While it waits it beats the run's heartbeat and renews the run's claims, so a long load keeps its
records (another run can take a claim over only after a whole lease of silence).

Why N and not more: N is the connection's ``max_in_flight`` and never more than the slots the load task holds
in the ``k3cloud_api`` pool (:func:`in_flight`), so the pool caps the requests in flight across all tasks.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from fxiaoke_k3cloud.flows.claims import Claims
from fxiaoke_k3cloud.flows.load_persist import persist, persist_after_error
from fxiaoke_k3cloud.flows.load_plan import LoadPlan, LoadResult
from fxiaoke_k3cloud.flows.load_write import Loader
from fxiaoke_k3cloud.flows.specs import FlowSpec

log = logging.getLogger(__name__)

HEARTBEAT_EVERY_S = 30.0  # sync_run.heartbeat_at and the claims' leases, while a long load runs


def task_pool_slots() -> int | None:
    """The pool slots of the Airflow task running this code, or None outside a task (bench, re-drive, tests)."""
    try:
        from airflow.sdk import get_current_context  # here, not at the top: only load tasks need it

        ti = get_current_context()["ti"]
    except Exception:  # noqa: BLE001 - no task context: the connection's figure alone applies
        return None
    slots = getattr(ti, "pool_slots", None) or getattr(getattr(ti, "task", None), "pool_slots", None)
    return int(slots) if isinstance(slots, int) and slots > 0 else None


def in_flight(hook: Any, slots: int | None = None) -> int:
    """K3Cloud requests a load may have in flight: the connection's ``max_in_flight``, capped by the task's
    slots in its pool (``slots``; by default asked from the running task)."""
    wanted = int(getattr(hook, "max_in_flight", 1) or 1)
    slots = task_pool_slots() if slots is None else slots
    if slots is not None and slots < wanted:
        log.info("k3cloud: max_in_flight %s capped at the load task's %s pool slot(s)", wanted, slots)
        return slots
    return wanted


class Writers:
    """Chunks in flight (at most ``n``), persisted in the order they were sent once their calls finished.

    Use as a context manager; on an error, :meth:`abort` persists every chunk whose calls finished or are still
    running (waiting for them), so nothing K3Cloud holds is left without its id map.
    """

    def __init__(self, spec: FlowSpec, store: Any, run_pk: int, claims: Claims, n: int) -> None:
        self.spec = spec
        self.store = store
        self.run_pk = run_pk
        self.claims = claims
        self.n = max(1, int(n))
        self.counts: Counter = Counter()
        self.pending: dict[Future[LoadResult], list[str]] = {}  # in submission order → the ids it claimed
        self._pool = ThreadPoolExecutor(max_workers=self.n, thread_name_prefix=f"load-{spec.name}")
        self._beat = time.monotonic()

    def __enter__(self) -> "Writers":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc is not None:
            self.abort(exc)
        self._pool.shutdown(wait=True)

    def submit(self, loader: Loader, plan: LoadPlan, ids: list[str]) -> None:
        """Send ``plan`` once fewer than ``n`` chunks are in flight; then persist the chunks that finished."""
        finished = self._wait(lambda running: running < self.n)
        self.pending[self._pool.submit(loader.execute, plan)] = list(ids)
        self._persist(finished)  # overlaps the calls just sent

    def drain(self) -> None:
        """Wait for every chunk in flight and persist it."""
        while self.pending:
            self._persist(self._wait(lambda running: running == 0, first=True))

    def tick(self) -> None:
        """Heartbeat the run and renew its claims, at most every ``HEARTBEAT_EVERY_S``."""
        if time.monotonic() - self._beat < HEARTBEAT_EVERY_S:
            return
        self.store.heartbeat(self.run_pk)
        self.claims.renew()
        self._beat = time.monotonic()

    def abort(self, exc: BaseException) -> None:
        log.error("%s: load failed (%s: %s); persisting the chunks whose K3Cloud calls finished, records not "
                  "persisted are retried by the next run", self.spec.name, type(exc).__name__, exc)
        for future in list(self.pending):
            self.pending.pop(future)
            persist_after_error(self.spec, self.store, self.run_pk, future)

    # ---- internals -------------------------------------------------------------------------------------------
    def _wait(self, enough: Any, *, first: bool = False) -> list[Future[LoadResult]]:
        """Wait (beating the heartbeat) until ``enough(running)`` holds — or, with ``first``, until at least one
        chunk finished; returns the finished chunks in submission order. A chunk whose calls raised is raised
        here, before anything else is sent."""
        while True:
            running = [f for f in self.pending if not f.done()]
            finished = [f for f in self.pending if f.done()]
            for future in finished:
                if future.exception() is not None:
                    raise future.exception()  # type: ignore[misc]
            if enough(len(running)) or (first and finished):
                return finished
            wait(running, timeout=HEARTBEAT_EVERY_S, return_when=FIRST_COMPLETED)
            self.tick()

    def _persist(self, finished: list[Future[LoadResult]]) -> None:
        for future in finished:
            ids = self.pending.pop(future)
            self.counts.update(persist(self.spec, self.store, self.run_pk, future.result()))
            self.claims.release(ids)
        self.tick()

"""One benchmark phase, run in a fresh subprocess: ``python -m bench.phase SPEC.json RESULT.json``.

A phase per process makes ``ru_maxrss`` that phase's peak and keeps one phase's caches (connections, hook
tokens, throttle windows, imported modules) from flattering the next. Kinds:

* ``flow``      – extract → transform → load → report of one flow through ``fxiaoke_k3cloud.flows.steps``,
                  with a context shaped like the one Airflow hands the DAG's tasks;
* ``baseline``  – the field article's way: read the CRM customers, map each, one K3Cloud ``Save`` per record;
* ``transform`` – the mapping engine alone on generated records (records/s);
* ``memory``    – one step (stage / transform / load dry run) of a customers run over N generated records (staged
                  one by one, as extract stages page after page),
                  each in its own process as Airflow runs each task: the memory for N records without N API calls.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

PAGE_KB = 4  # /proc/self/statm counts pages


def rss_mb() -> float:
    """Current resident set size of this process."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * PAGE_KB / 1024
    except OSError:
        return peak_rss_mb()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class TaskInstance:
    """The one thing ``report`` asks of its ``ti``: the return values of earlier tasks by task id."""

    def __init__(self) -> None:
        self.xcoms: dict[str, Any] = {}

    def xcom_pull(self, task_ids: str, **_: Any) -> Any:
        return self.xcoms.get(task_ids)


def flow_context(run_id: str, params: dict[str, Any], ti: TaskInstance) -> dict[str, Any]:
    """What a manually triggered DAG run gives its tasks (Airflow 3: no data interval on manual runs)."""
    dag_run = SimpleNamespace(run_id=run_id, run_type="manual", run_after=datetime.now(timezone.utc))
    return {"params": params, "dag_run": dag_run, "run_id": run_id, "ti": ti,
            "data_interval_start": None, "data_interval_end": None}


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


# ----------------------------------------------------------------------------------------------------
def run_flow(spec: dict[str, Any]) -> dict[str, Any]:
    from fxiaoke_k3cloud.flows import steps

    flow = spec["flow"]
    ti = TaskInstance()
    context = flow_context(spec["run_id"], dict(spec.get("params") or {}), ti)
    migrate_audit_store()
    rss_before = rss_mb()
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    extracted, seconds["extract"] = timed(lambda: steps.extract(flow, context))
    ti.xcoms[f"extract_{flow}"] = extracted
    transformed, seconds["transform"] = timed(lambda: steps.transform(flow, extracted, context))
    ti.xcoms[f"transform_{flow}"] = transformed
    loaded, seconds["load"] = timed(lambda: steps.load(flow, transformed, context))
    ti.xcoms[f"load_{flow}"] = loaded
    status, error = "success", None
    t0 = time.perf_counter()
    try:
        counts = steps.report(flow, context)
    except Exception as exc:  # noqa: BLE001 - report fails red on rejected/failed records; the bench records it
        status, error, counts = "failed", f"{type(exc).__name__}: {exc}", dict(loaded)
    seconds["report"] = time.perf_counter() - t0
    wall = time.perf_counter() - started
    return {"kind": "flow", "flow": flow, "wall_s": wall, "step_seconds": seconds, "status": status,
            "error": error, "counts": counts,
            # the load reads the rest of a big window itself (flows/stream.py)
            "extracted": int(extracted.get("extracted", 0)) + int(loaded.get("streamed", 0)),
            "streamed": int(loaded.get("streamed", 0)),
            "transform_counts": {k: transformed.get(k) for k in ("packages", "rejected", "held", "reported", "parked")},
            "rss_before_mb": rss_before, "peak_rss_mb": peak_rss_mb()}


def migrate_audit_store() -> None:
    """Create the audit tables before the clock, as a deployment does once (``python -m fxiaoke_k3cloud migrate``
    in the compose file's init); the steps still check the schema revision themselves, on the clock."""
    from fxiaoke_k3cloud.audit import AuditStore

    store = AuditStore.from_airflow()
    store.migrate()
    store.dispose()


def run_baseline(spec: dict[str, Any]) -> dict[str, Any]:
    """Per-record loading as hand-written integrations do it: for each CRM customer, map it and call Save."""
    import pandas as pd

    from fxiaoke_k3cloud.errors import SyncError
    from fxiaoke_k3cloud.flows.specs import flow_spec
    from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook
    from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook
    from fxiaoke_k3cloud.mapping import load_mapping, transform

    fspec = flow_spec(spec["flow"])
    mapping = load_mapping(fspec.mapping_path)
    options = dict(mapping.save_options.as_dict() if hasattr(mapping.save_options, "as_dict") else mapping.save_options)
    rss_before = rss_mb()
    started = time.perf_counter()
    fx, k3 = FxiaokeHook(), K3CloudHook()
    records = [r for page in fx.query_records(fspec.source_object) for r in page]
    # Mapped once with the vectorised engine, not record by record: a per-record mapper would only make the
    # baseline slower, and the comparison is meant to be about the API pattern (one Save per record).
    packages = transform(mapping, pd.DataFrame.from_records(records)).packages if records else []
    # ``limit``: save only the first N mapped records (a 1-thread baseline of 10 000 saves takes ~15 min); the
    # report scales the save time, measured apart from the read, to all of them.
    limit = spec.get("limit")
    packages = packages[:int(limit)] if limit else packages
    read_s = time.perf_counter() - started
    threads = int(spec.get("threads") or 1)
    saved = failed = 0
    if threads <= 1:
        for package in packages:
            try:
                k3.save(fspec.target_form, package.model, **options)
                saved += 1
            except SyncError:
                failed += 1
    else:
        # What a hand-written integration with a thread pool does: N writers, each with its own client (session),
        # taking the next record; one Save per record.
        from concurrent.futures import ThreadPoolExecutor
        from threading import local

        clients = local()

        def save_one(package: Any) -> bool:
            if not hasattr(clients, "hook"):
                clients.hook = K3CloudHook()
            try:
                clients.hook.save(fspec.target_form, package.model, **options)
                return True
            except SyncError:
                return False

        with ThreadPoolExecutor(max_workers=threads) as pool:
            results = list(pool.map(save_one, packages))
        saved, failed = sum(results), len(results) - sum(results)
    read = len(records)
    wall = time.perf_counter() - started
    return {"kind": "baseline", "flow": spec["flow"], "threads": threads, "wall_s": wall, "read_s": read_s,
            "save_s": wall - read_s, "extracted": read, "attempted": len(packages), "saved": saved,
            "failed": failed, "rss_before_mb": rss_before, "peak_rss_mb": peak_rss_mb()}


def run_transform(spec: dict[str, Any]) -> dict[str, Any]:
    """Records/s of the customer mapping on N generated accounts (median of 5), CPU µs and instructions per record.

    See :mod:`bench.mapping`; the instruction count (valgrind, optional) runs in processes of its own.
    """
    from bench import mapping

    out = mapping.measure(int(spec["n"]), mapping.REPEATS)
    n_instr = int(spec.get("instructions_records") or 0)
    out["instructions"] = mapping.instructions(n_instr) if n_instr else {"skipped": "not asked (--instructions-records 0)"}
    return {"kind": "transform", **out, "peak_rss_mb": peak_rss_mb()}


def run_memory(spec: dict[str, Any]) -> dict[str, Any]:
    """One step of a customers run over N generated records, alone in this process as in an Airflow task.

    ``stage``: what extract ends with (N CRM records in a list, staged); ``transform``: the flow's transform step;
    ``load``: the flow's load step as a dry run (no API; it builds and audits every would-be request instead).
    """
    from fxiaoke_k3cloud.flows import steps
    from fxiaoke_k3cloud.flows.stage import Stage
    from tests.mapping.crm_records import account

    n, step = int(spec["n"]), spec["step"]
    context = flow_context(f"bench-memory-{n}", {"dry_run": True}, TaskInstance())
    store = steps.open_store()
    rss_before = rss_mb()
    if step == "stage":
        def stage() -> dict[str, Any]:
            # Records generated one by one into the stage, as extract stages page after page: the step's peak is
            # the staging's, not a list of N records that no flow step holds.
            run_pk = store.start_run("customers", f"bench-memory-{n}", "manual",
                                     datetime(2025, 1, 1, tzinfo=timezone.utc), datetime.now(timezone.utc))
            Stage(store).put(run_pk, "raw", (account(i) for i in range(1, n + 1)))
            return {"run_pk": run_pk, "window": {}, "extracted": n, "retried": 0, "move_watermark": False,
                    "dry_run": True}
        xcom, seconds = timed(stage)
    elif step == "transform":
        xcom, seconds = timed(lambda: steps.transform("customers", spec["xcom"], context))
    else:
        xcom, seconds = timed(lambda: steps.load("customers", spec["xcom"], context))
    return {"kind": "memory", "n": n, "step": step, "xcom": xcom, "seconds": seconds,
            "rss_before_mb": rss_before, "peak_rss_mb": peak_rss_mb()}


KINDS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "flow": run_flow, "baseline": run_baseline, "transform": run_transform, "memory": run_memory,
}


def preload() -> float:
    """Import what a task process has loaded before the step runs (Airflow, pandas, hooks, engine); seconds taken.

    The steps import lazily, so without this the first step would pay ~2 s of imports that an Airflow worker
    pays once per task process before the task starts, and "memory before work" would not include them.
    """
    import importlib

    started = time.perf_counter()
    for name in ("pandas", "sqlalchemy", "airflow.sdk", "airflow.sdk.exceptions", "fxiaoke_k3cloud.flows.steps",
                 "fxiaoke_k3cloud.flows.extract", "fxiaoke_k3cloud.flows.transform", "fxiaoke_k3cloud.flows.load",
                 "fxiaoke_k3cloud.flows.stage", "fxiaoke_k3cloud.audit", "fxiaoke_k3cloud.mapping",
                 "fxiaoke_k3cloud.hooks.fxiaoke", "fxiaoke_k3cloud.hooks.k3cloud"):
        importlib.import_module(name)
    return time.perf_counter() - started


def main(argv: list[str]) -> int:
    spec_path, result_path = Path(argv[0]), Path(argv[1])
    spec = json.loads(spec_path.read_text())
    # The DAG tasks log at INFO into Airflow's task log; here it goes to the phase's log file, warnings only.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import_s = preload()
    logging.getLogger().setLevel(logging.WARNING)
    result = KINDS[spec["kind"]](spec)
    result["import_s"] = import_s
    result_path.write_text(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

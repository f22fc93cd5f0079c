"""The CRM → K3Cloud side of the one pipeline (``flows.steps``): the Fxiaoke-source and the K3Cloud-target adapter.

``steps.extract`` / ``transform`` / ``load`` open the run, its window and the watermark for every flow, and hand
the work to the adapters of the flow's ``FlowSpec.direction``; for ``crm_to_k3`` those are the two classes here:

* :class:`FxiaokeSource` (extract, over the Fxiaoke hook): the CRM records changed in the window, plus parked,
  failed and held records re-read by id (with ``ids``: exactly those), streamed to the staging table
  (:mod:`.extract`); records modified in the future are reported. The flow module's ``extract`` hook replaces the
  generic read (orders: headers and their lines), ``staged_lines`` gives the transform its entry rows;
* :class:`K3CloudTarget` (transform and load, over the K3Cloud hook): the flow's mapping file maps the staged
  records into K3Cloud packages (:mod:`.transform`: lookups built from the mapping, parking, life-status rules),
  and the loader writes them idempotently (:mod:`.load`: id map, read-back by number, claims, void policy).

No flow names here: per-flow code is in the flow's module (``FlowSpec.module``) as named hooks.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Mapping

from fxiaoke_k3cloud.flows.extract import extract_records, report_future_records
from fxiaoke_k3cloud.flows.load import load_staged
from fxiaoke_k3cloud.flows.mappings import flow_mapping
from fxiaoke_k3cloud.flows.specs import FlowSpec, flow_hook
from fxiaoke_k3cloud.flows.stage import Stage
from fxiaoke_k3cloud.flows.stream import hand_off_rows, staged_cursor
from fxiaoke_k3cloud.flows.transform import transform_staged
from fxiaoke_k3cloud.flows.window import EPOCH, Window
from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook
from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook

log = logging.getLogger(__name__)


class FxiaokeSource:
    """Extract of a ``crm_to_k3`` flow: stage the window's changed CRM records (plus earlier failures to retry)."""

    def extract(self, spec: FlowSpec, store: Any, run_pk: int, window: Window, params: Mapping[str, Any]) -> dict[str, Any]:
        hook = FxiaokeHook()
        stage = Stage(store)
        custom = flow_hook(spec, "extract")
        rows = hand_off_rows(spec, hook, params)
        if custom is not None:
            extracted, retried = custom(spec, hook, store, stage, run_pk, window, ids=params["ids"])
        else:
            extracted, retried = extract_records(spec, hook, store, stage, run_pk, window, ids=params["ids"],
                                                 hand_off_rows=rows)
        more = staged_cursor(stage, run_pk) is not None  # the load reads the rest of the window (:mod:`.stream`)
        if not params["ids"]:
            report_future_records(spec, hook, store, run_pk, int(datetime.now(timezone.utc).timestamp() * 1000),
                                  backlog=more)
        log.info("%s: extracted %s records (%s earlier failures/parked retried), Fxiaoke calls: %s",
                 spec.name, extracted, retried, hook.calls.as_dict())
        # Nothing staged (no record, retry, deletion or void) and not a run that checks every target (full
        # resync): the later steps would read an empty stage, so the DAG skips them (dag_factory).
        idle = window.start > EPOCH and stage.is_empty(run_pk)
        return {"extracted": extracted, "retried": retried, **({"read_on_in_load": True} if more else {}),
                **({"nothing_to_do": True} if idle else {})}


class K3CloudTarget:
    """Transform and load of a ``crm_to_k3`` flow: the mapping engine, then the K3Cloud loader."""

    def transform(self, spec: FlowSpec, store: Any, run_pk: int) -> dict[str, Any]:
        return dict(transform_staged(spec, store, run_pk))

    def load(self, spec: FlowSpec, store: Any, run_pk: int, *, dry_run: bool, params: Mapping[str, Any]) -> dict[str, Any]:
        flow_mapping(spec)  # the target form's keys are known to the hook before the loader reads back by number
        with K3CloudHook() as k3:  # one K3Cloud session for the task, logged out when it ends (also on failure)
            return dict(load_staged(spec, store, k3, run_pk, dry_run=dry_run,
                                    void_action=str(params.get("void_action") or "report")))

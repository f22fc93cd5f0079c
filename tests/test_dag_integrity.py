"""Every DAG file imports cleanly, is documented and tagged, retries, and does no I/O at import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DAG_FILES = sorted(p for p in (ROOT / "dags").glob("*.py") if not p.name.startswith("_"))

# Imports the DAG files with an audit hook armed, after Airflow itself is loaded: any socket, database
# or non-code file access during a DAG file's import is reported (the dag-processor re-parses every 5 min).
_IO_PROBE = r"""
import importlib.util, json, sys
import airflow.sdk, croniter  # library start-up (croniter runs `file` once) is not the DAG file's doing
events = []
ROOT = sys.argv[1]
def hook(event, args):
    if event in ("socket.connect", "socket.getaddrinfo", "sqlite3.connect", "subprocess.Popen", "urllib.Request"):
        events.append([event, repr(args)[:200]])
    elif event == "open" and isinstance(args[0], str) and args[0].startswith(ROOT) \
            and not args[0].endswith((".py", ".pyc", ".so", ".pth")) and "/.venv/" not in args[0]:
        events.append([event, args[0]])
found = {}
for path in sys.argv[2:]:
    events.clear()
    spec = importlib.util.spec_from_file_location("dagfile_" + path.rsplit("/", 1)[-1][:-3], path)
    module = importlib.util.module_from_spec(spec)
    sys.addaudithook(hook) if not found else None
    spec.loader.exec_module(module)
    found[path] = list(events)
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_dag_folder_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}


def test_each_dag_file_defines_a_dag_named_after_the_file(dagbag):
    ids = {dag.dag_id for dag in dagbag.dags.values()}
    for path in DAG_FILES:
        assert path.stem in ids, f"{path.name} must define a DAG with dag_id '{path.stem}'"


def test_dags_are_documented_tagged_and_retry(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id}: add tags"
        assert dag.doc_md and len(dag.doc_md) > 80, f"{dag_id}: doc_md must explain the DAG"
        for task in dag.tasks:
            if task.task_id == "report":
                continue  # the report task fails on purpose when records failed; retrying cannot help
            assert task.retries >= 2, f"{dag_id}.{task.task_id}: retries must be >= 2"


@pytest.mark.skipif(not DAG_FILES, reason="no DAG files yet")
def test_dag_files_do_no_io_at_import():
    out = subprocess.run(
        [sys.executable, "-c", _IO_PROBE, str(ROOT), *map(str, DAG_FILES)],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout
    events = json.loads(out.strip().splitlines()[-1])
    offenders = {Path(p).name: e for p, e in events.items() if e}
    assert offenders == {}, f"DAG files doing I/O at import: {offenders}"


def test_io_probe_catches_a_dag_file_that_reads_config_at_import(tmp_path):
    (tmp_path / "mapping.yaml").write_text("a: 1\n")
    bad = tmp_path / "bad_dag.py"
    bad.write_text(f"open({str(tmp_path / 'mapping.yaml')!r}).read()\nimport sqlite3\nsqlite3.connect(':memory:')\n")
    out = subprocess.run(
        [sys.executable, "-c", _IO_PROBE, str(tmp_path), str(bad)], capture_output=True, text=True, check=True
    ).stdout
    events = json.loads(out.strip().splitlines()[-1])[str(bad)]
    assert {e[0] for e in events} == {"open", "sqlite3.connect"}


# --- flows as data: a flow DAG is its registry entry plus a short file (issue 16) --------------------------------
FLOW_DAG_MAX_LINES = 30


def _flow_dag_files() -> dict[str, Path]:
    from fxiaoke_k3cloud.flows.specs import FLOWS

    return {name: ROOT / "dags" / f"{spec.dag_id}.py" for name, spec in FLOWS.items()}


def test_every_registry_flow_has_its_dag_with_the_tasks_the_report_reads(dagbag):
    from fxiaoke_k3cloud.dag_factory import required_task_ids
    from fxiaoke_k3cloud.flows.specs import FLOWS

    for name, spec in FLOWS.items():
        dag = dagbag.dags.get(spec.dag_id)
        assert dag is not None, f"flow {name}: no DAG {spec.dag_id!r} (registry and DAG file disagree)"
        assert required_task_ids(name) <= set(dag.task_ids), f"{spec.dag_id}: the report reads {required_task_ids(name)}"
        report = dag.get_task("report")
        assert report.trigger_rule == "all_done" and report.on_failure_callback, f"{spec.dag_id}: report wiring"
        # report follows load, or the write-back that follows load (dag_factory Stage(always=True))
        last = f"write_back_{name}" if f"write_back_{name}" in dag.task_ids else f"load_{name}"
        assert set(report.upstream_task_ids) == {last}
        if last != f"load_{name}":
            assert set(dag.get_task(last).upstream_task_ids) == {f"load_{name}"}
            assert dag.get_task(last).trigger_rule == "none_failed"  # runs in idle runs too


def test_flow_dag_files_are_short(dagbag):
    for name, path in _flow_dag_files().items():
        source = path.read_text()
        body = source[source.index('"""', 3) + 3:] if source.startswith('"""') else source
        lines = [line for line in body.splitlines() if line.strip()]
        assert len(lines) <= FLOW_DAG_MAX_LINES, f"{path.name}: {len(lines)} non-blank lines besides doc_md"


def test_factory_refuses_a_dag_id_the_registry_does_not_know_and_a_missing_report_input():
    from fxiaoke_k3cloud.dag_common import every_15_minutes
    from fxiaoke_k3cloud.dag_factory import Stage, flow_dag
    from fxiaoke_k3cloud.errors import ConfigError

    stages = [Stage("extract_customers", "extract"), Stage("load_customers", "load")]
    with pytest.raises(ConfigError, match="registry entry names DAG 'fxiaoke_customers_to_k3cloud'"):
        flow_dag("customers", dag_id="customers_v2", schedule=every_15_minutes(), params={}, stages=stages,
                 tags=["t"], doc_md="x")
    with pytest.raises(ConfigError, match="lacks task.*load_customers"):
        flow_dag("customers", dag_id="fxiaoke_customers_to_k3cloud", schedule=None, params={},
                 stages=[Stage("extract_customers", "extract"), Stage("write_customers", "load")], tags=["t"],
                 doc_md="x")
    with pytest.raises(ConfigError, match="unknown flow 'invoices'"):  # contacts is a registered flow now
        flow_dag("invoices", dag_id="x", schedule=None, params={}, stages=stages, tags=["t"], doc_md="x")


# --- fused stages: several steps in one task (issue 17: one task start-up less on the audit → CRM path) ----------
CALLS: list[tuple[str, object]] = []


def _first(flow, context):
    CALLS.append(("first", None))
    return dict(context["first_result"])


def _second(flow, upstream, context):
    CALLS.append(("second", upstream))
    return {**upstream, "second": True}


def _third(flow, upstream, context):
    CALLS.append(("third", upstream))
    return {**upstream, "third": True}


class _TI:
    def __init__(self) -> None:
        self.pushed: dict[str, object] = {}

    def xcom_push(self, key, value) -> None:
        self.pushed[key] = value


def _run_stage(monkeypatch, tmp_path, stage, *, first, later, upstream=None, first_result=None):
    from types import SimpleNamespace

    from fxiaoke_k3cloud.dag_factory import _stage_task

    monkeypatch.setenv("SYNC_AUDIT_URL", f"sqlite:///{tmp_path / 'audit.db'}")  # task_notes records calls there
    CALLS.clear()
    ti = _TI()
    context = {"ti": ti, "dag_run": SimpleNamespace(run_id="manual__fused"), "first_result": first_result or {}}
    result = _stage_task("deliveries", stage, first=first, later=later).function(upstream, **context)
    return result, ti


def test_the_k3_to_crm_dags_map_and_write_in_one_task(dagbag):
    for flow in ("deliveries", "receipts"):
        dag = dagbag.dags[f"k3cloud_{flow}_to_fxiaoke"]
        assert set(dag.task_ids) == {f"extract_{flow}", f"load_{flow}", "report"}
        assert dag.get_task(f"load_{flow}").upstream_task_ids == {f"extract_{flow}"}
        assert dag.get_task(f"load_{flow}").pool == "fxiaoke_api"


def test_the_k3_to_crm_dags_offer_ids_as_k3cloud_fids(dagbag):
    # Their extract reads exactly the given FIDs (as a re-drive does); the trigger form must offer the param.
    for flow in ("deliveries", "receipts"):
        params = dagbag.dags[f"k3cloud_{flow}_to_fxiaoke"].params
        assert "ids" in params, flow
        assert "FID" in params.get_param("ids").description, flow


def test_a_fused_stage_hands_each_step_the_previous_result(monkeypatch, tmp_path):
    from fxiaoke_k3cloud.dag_factory import Stage

    me = __name__
    stage = Stage("load_deliveries", (f"{me}:_second", f"{me}:_third"))
    result, _ = _run_stage(monkeypatch, tmp_path, stage, first=False, later=[], upstream={"run_pk": 7})
    assert CALLS == [("second", {"run_pk": 7}), ("third", {"run_pk": 7, "second": True})]
    assert result == {"run_pk": 7, "second": True, "third": True}

    stage = Stage("extract_deliveries", (f"{me}:_first", f"{me}:_second"))  # a fused first stage
    result, _ = _run_stage(monkeypatch, tmp_path, stage, first=True, later=["load_deliveries"],
                           first_result={"run_pk": 8})
    assert [name for name, _ in CALLS] == ["first", "second"] and result == {"run_pk": 8, "second": True}


def test_an_idle_first_step_skips_the_rest_of_its_fused_stage_and_the_later_stages(monkeypatch, tmp_path):
    from airflow.sdk.exceptions import DownstreamTasksSkipped

    from fxiaoke_k3cloud.dag_factory import Stage

    me = __name__
    stage = Stage("extract_deliveries", (f"{me}:_first", f"{me}:_second"))
    idle = {"run_pk": 9, "nothing_to_do": True}
    with pytest.raises(DownstreamTasksSkipped) as skipped:
        _run_stage(monkeypatch, tmp_path, stage, first=True, later=["load_deliveries"], first_result=idle)
    assert skipped.value.tasks == ["load_deliveries"] and CALLS == [("first", None)]
    result, ti = _run_stage(monkeypatch, tmp_path, stage, first=True, later=[], first_result=idle)
    assert result == idle and CALLS == [("first", None)] and ti.pushed == {}  # nothing later to skip


def test_factory_compares_fused_stages_step_by_step_with_the_registry():
    from fxiaoke_k3cloud.dag_factory import Stage, flow_dag
    from fxiaoke_k3cloud.errors import ConfigError
    from fxiaoke_k3cloud.flows.specs import flow_spec

    extract, transform, load = flow_spec("deliveries").steps
    args = {"dag_id": "k3cloud_deliveries_to_fxiaoke", "schedule": None, "params": {}, "tags": ["t"], "doc_md": "x"}
    dag = flow_dag("deliveries", stages=[Stage("extract_deliveries", (extract, transform)),
                                         Stage("load_deliveries", load)], **args)
    assert set(dag.task_ids) == {"extract_deliveries", "load_deliveries", "report"}
    with pytest.raises(ConfigError, match="registry's flow 'deliveries'"):  # the order counts inside a stage too
        flow_dag("deliveries", stages=[Stage("extract_deliveries", extract),
                                       Stage("load_deliveries", (load, transform))], **args)
    with pytest.raises(ConfigError, match="non-empty tuple"):
        flow_dag("deliveries", stages=[Stage("extract_deliveries", extract), Stage("x", ()),
                                       Stage("load_deliveries", (transform, load))], **args)

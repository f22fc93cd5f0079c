"""The flow registry drives the DAG factory, re-drive and reconciliation: dependencies order, steps agree."""

from __future__ import annotations

import dataclasses

import pytest

from fxiaoke_k3cloud.errors import ConfigError
from fxiaoke_k3cloud.flows import specs


def test_dependencies_come_first_whatever_order_they_are_asked_in():
    assert specs.ordered(["orders", "customers"]) == ["customers", "orders"]
    assert specs.ordered(["orders"]) == ["orders"]  # a dependency not asked for is not added
    # Every flow, both directions, is re-driven and reconciled (dependencies first: receipts after orders).
    assert specs.redrive_flows() == ["customers", "orders", "contacts", "deliveries", "receipts"]
    assert specs.reconciled_flows() == specs.redrive_flows()


def test_every_flow_runs_the_one_pipeline_its_own_code_only_in_its_module():
    """The steps of every flow are the generic ones of ``flows.steps`` (plus the declared write-back); what a flow
    does differently is a named hook of its module, which the adapters of its direction call."""
    from fxiaoke_k3cloud.flows import steps

    generic = {"extract", "sync_dependencies", "transform", "load", specs.WRITE_BACK}
    for name, spec in specs.FLOWS.items():
        assert set(spec.steps) <= generic, f"{name}: {spec.steps}"
        assert spec.steps[0] == "extract" and "load" in spec.steps, name
        assert spec.direction in steps.ADAPTERS, name
        if spec.direction == "k3_to_crm":  # the CRM target has no generic mapping: the module's hooks are required
            assert callable(specs.flow_hook(spec, "transform")) and callable(specs.flow_hook(spec, "load")), name


def test_a_dependency_cycle_is_a_config_error(monkeypatch):
    flows = dict(specs.FLOWS)
    flows["customers"] = dataclasses.replace(flows["customers"], depends_on=("orders",))
    monkeypatch.setattr(specs, "FLOWS", flows)
    with pytest.raises(ConfigError, match="cycle: (customers → orders → customers|orders → customers → orders)"):
        specs.ordered(["customers", "orders"])


def test_every_registered_step_resolves_to_a_function():
    for name, spec in specs.FLOWS.items():
        for step in spec.steps:
            assert callable(specs.resolve_step(step)), f"{name}: step {step!r}"


def test_factory_refuses_stages_that_differ_from_the_registry_steps():
    from fxiaoke_k3cloud.dag_factory import Stage, flow_dag

    stages = [Stage("extract_orders", "extract"), Stage("transform_orders", "transform"),
              Stage("load_orders", "load")]  # sync_customers left out
    with pytest.raises(ConfigError, match="registry's flow 'orders'"):
        flow_dag("orders", dag_id="fxiaoke_orders_to_k3cloud", schedule=None, params={}, stages=stages,
                 tags=["t"], doc_md="x")


def test_every_lookup_flow_is_a_registered_dependency():
    """A mapping's ``lookups.<name>.flow`` names a registry flow the flow depends on (synced first, re-driven first)."""
    from fxiaoke_k3cloud.mapping import load_mapping

    for name, spec in specs.FLOWS.items():
        mapping = load_mapping(spec.mapping_path)
        for lookup, decl in mapping.lookups.items():
            if decl.flow is None:
                continue
            assert decl.flow in specs.FLOWS, f"{spec.mapping_file}: lookups.{lookup}.flow {decl.flow!r}"
            assert decl.flow in spec.depends_on, f"{name}: lookup {lookup} resolves through {decl.flow}, not in depends_on"


def test_a_flow_target_form_is_known_to_the_hook_from_its_mapping_alone():
    """Read-back by number needs the form's pk and number field: the mapping's target gives them, no hook table."""
    from fxiaoke_k3cloud.flows.mappings import flow_mapping
    from fxiaoke_k3cloud.hooks.k3cloud_query import FORM_KEYS, form_keys, stable_order

    assert "BD_CommonContact" not in FORM_KEYS
    flow_mapping(specs.flow_spec("contacts"))
    keys = form_keys("bd_commoncontact")
    assert (keys.pk, keys.number_key) == ("FCONTACTID", "FNumber")
    assert stable_order("BD_CommonContact", ["FNumber"], None) == "FCONTACTID ASC"


def test_the_shared_pipeline_and_operations_name_no_flow():
    """No ``if spec.name == "orders"`` anywhere in the one pipeline, its adapters, re-drive or reconciliation: no
    string literal in them is a registry flow's name (docstrings aside)."""
    import ast
    import importlib

    shared = ["flows.steps", "flows.crm_pipeline", "flows.k3_pipeline", "flows.run_context", "flows.k3_load",
              "ops.redrive", "ops.queue", "ops.reconcile_steps", "ops.reconcile_crm"]
    for name in shared:
        module = importlib.import_module(f"fxiaoke_k3cloud.{name}")
        tree = ast.parse(open(module.__file__, encoding="utf-8").read())
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body
                      and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        named = sorted({n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and id(n) not in docstrings
                        and n.value in specs.FLOWS})
        assert named == [], f"{name} names flow(s) {named}"

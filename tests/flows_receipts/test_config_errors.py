"""Configuration errors (issue #18) in the K3Cloud → CRM flows fail the step at once as ConfigError — never one
"failed" outcome per record: a refused K3Cloud login in extract, a CRM app without permission in load."""

from __future__ import annotations

import json

import pytest

from fxiaoke_k3cloud.errors import AuthenticationError, ConfigError, PermissionDeniedError
from fxiaoke_k3cloud.flows import steps
from fxiaoke_k3cloud.flows.deliveries_crm import NOTE_OBJECT, DeliveryLoader, NotePackage
from fxiaoke_k3cloud.flows.receipts_crm import PAYMENT, ReceiptLoader, ReceiptPackage
from fxiaoke_k3cloud.flows.specs import flow_spec
from fxiaoke_k3cloud.flows.stage import Stage
from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook
from simproc import k3cloud_conn

from .world import context


class UnauthorisedOnCreate(FxiaokeHook):
    """The CRM app loses its authorisation (20020) when the first record of ``api`` is created — on the wire."""

    def __init__(self, sim, api):
        super().__init__(retry_wait_s=0)
        self.sim, self.api, self.creates = sim, api, 0

    def create_record(self, object_api_name, *args, **kwargs):
        if object_api_name == self.api:
            self.creates += 1
            self.sim.faults({"app_unauthorised": True})
        return super().create_record(object_api_name, *args, **kwargs)


def _staged(flow, store):
    ctx = context()
    transformed = steps.transform(flow, steps.extract(flow, ctx), ctx)
    return transformed["run_pk"], list(Stage(store).get(transformed["run_pk"], "package"))


def _records(store, flow):
    """Every outcome the flow recorded (any run)."""
    import sqlalchemy as sa

    from fxiaoke_k3cloud.audit.schema import sync_record

    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(sync_record).where(sync_record.c.flow == flow))]


def _failed(store, flow):
    return [r for r in _records(store, flow) if r["outcome"] == "failed"]


@pytest.mark.parametrize("flow", ["deliveries", "receipts"])
def test_a_refused_k3cloud_login_fails_extract_once_as_a_config_error(world, monkeypatch, flow):
    world.pushed_receipt(world.order()) if flow == "receipts" else world.audited_notice(world.order())
    conn = json.loads(k3cloud_conn(world.k3sim))
    monkeypatch.setenv("AIRFLOW_CONN_K3CLOUD_DEFAULT", json.dumps({**conn, "password": "wrong-password"}))

    with pytest.raises(AuthenticationError) as caught:
        steps.extract(flow, context())

    assert isinstance(caught.value, ConfigError)
    assert _records(world.store, flow) == []  # no per-record outcome at all


@pytest.mark.parametrize("flow,api,loader,package", [
    ("deliveries", NOTE_OBJECT, DeliveryLoader, NotePackage),
    ("receipts", PAYMENT, ReceiptLoader, ReceiptPackage),
], ids=["deliveries", "receipts"])
def test_a_crm_permission_error_in_the_load_fails_the_step_not_each_document(world, flow, api, loader, package):
    for _ in range(3):
        world.pushed_receipt(world.order()) if flow == "receipts" else world.audited_notice(world.order())
    run_pk, rows = _staged(flow, world.store)
    hook = UnauthorisedOnCreate(world.fxsim, api)

    try:
        with pytest.raises(PermissionDeniedError) as caught:
            loader(flow_spec(flow), hook, world.store, run_pk).run([package.from_stage(r) for r in rows])
    finally:
        world.fxsim.faults({})

    assert isinstance(caught.value, ConfigError)
    assert hook.creates == 1  # the step stopped at the first refusal
    assert _failed(world.store, flow) == []
    assert world.fxsim.records(api) == []  # refused: nothing landed

"""A CRM create whose answer is lost (simulator timeout fault: the write is applied, the answer never comes)."""

from __future__ import annotations

from fxiaoke_k3cloud.flows import steps
from fxiaoke_k3cloud.flows.deliveries_crm import NOTE_OBJECT, DeliveryLoader, NotePackage
from fxiaoke_k3cloud.flows.specs import flow_spec
from fxiaoke_k3cloud.flows.stage import Stage
from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook
from simproc import fxiaoke_conn

from .world import context, run_flow


class AnswerLosingHook(FxiaokeHook):
    """Turns the simulator's timeout fault on for delivery-note creates only (the fault is real, on the wire)."""

    def __init__(self, sim, **kwargs):
        super().__init__(retry_wait_s=0, **kwargs)
        self.sim = sim

    def create_record(self, object_api_name, data, details=None, *args, **kwargs):
        if object_api_name != NOTE_OBJECT:
            return super().create_record(object_api_name, data, details, *args, **kwargs)
        self.sim.faults({"timeout_rate": 1, "timeout_delay_s": 2})
        try:
            return super().create_record(object_api_name, data, details, *args, **kwargs)
        finally:
            self.sim.faults({})


def test_create_timeout_is_read_back_by_name_and_not_duplicated(world, monkeypatch):
    order = world.order()
    number = world.audited_notice(order)
    window = world.window()
    monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", fxiaoke_conn(world.fxsim, timeout=1))
    ctx = context(**window)
    transformed = steps.transform("deliveries", steps.extract("deliveries", ctx), ctx)
    packages = [NotePackage.from_stage(r) for r in Stage(world.store).get(transformed["run_pk"], "package")]
    creates_before = world.crm_calls("/data/create")

    counts = DeliveryLoader(flow_spec("deliveries"), AnswerLosingHook(world.fxsim), world.store,
                            transformed["run_pk"]).run(packages)

    assert dict(counts) == {"created": 1}
    assert world.crm_calls("/data/create") - creates_before == 1  # read back, never re-sent
    history = world.history(number)
    assert [h["outcome"] for h in history] == ["created"] and "found in the CRM by name" in history[0]["reason"]
    assert len(world.notes()) == 1 and len(world.messages()) == 1

    run_flow(**window)  # the same window again: still one note and one message
    assert len(world.notes()) == 1 and len(world.messages()) == 1


def test_create_lost_and_not_visible_yet_is_failed_then_linked_by_the_next_run(world, monkeypatch):
    number = world.audited_notice(world.order())
    window = world.window()
    monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", fxiaoke_conn(world.fxsim, timeout=1))
    ctx = context(**window)
    transformed = steps.transform("deliveries", steps.extract("deliveries", ctx), ctx)
    packages = [NotePackage.from_stage(r) for r in Stage(world.store).get(transformed["run_pk"], "package")]

    class LaggingIndexHook(AnswerLosingHook):  # the search index has not caught up when we read back
        def create_record(self, *args, **kwargs):
            try:
                return super().create_record(*args, **kwargs)
            finally:
                self.sim.faults({"index_lag_s": 3600})

    hook = LaggingIndexHook(world.fxsim)
    counts = DeliveryLoader(flow_spec("deliveries"), hook, world.store, transformed["run_pk"]).run(packages)
    assert dict(counts) == {"failed": 1} and len(world.notes()) == 1  # landed, but not visible to a query
    world.fxsim.faults({})
    creates_before = world.crm_calls("/data/create")

    run_flow(**window)  # the index caught up: the next run finds the note by name before creating

    assert world.crm_calls("/data/create") == creates_before
    assert len(world.notes()) == 1 and len(world.messages()) == 1
    assert [h["outcome"] for h in world.history(number)] == ["failed", "updated"]

"""Writes against the simulator: Save, BatchSave mapped by DIndex, state changes, operations, View."""

from __future__ import annotations

import pytest

from fxiaoke_k3cloud.errors import BusinessRuleError
from fxiaoke_k3cloud.hooks.k3cloud_response import FieldError

from .helpers import calls, customer, make_hook


def test_save_returns_id_number_and_requested_fields(k3cloud):
    hook = make_hook()
    result = hook.save("BD_Customer", customer("0012", "零开头客户"), NeedReturnFields=["FNumber", "FName"])
    assert result.number == "0012"
    assert isinstance(result.id, int) and result.id > 0
    assert result.need_return_data and result.need_return_data[0].get("FNumber") == "0012"
    stored = [r for r in k3cloud.records("BD_Customer") if r["FNumber"] == "0012"]
    assert len(stored) == 1 and stored[0]["FCUSTID"] == result.id


def test_unknown_save_option_fails_before_any_call(k3cloud):
    with pytest.raises(ValueError, match="IsAutoSubmitAndAudt"):
        make_hook().save("BD_Customer", customer("C1"), IsAutoSubmitAndAudt=True)
    assert k3cloud.stats()["total"] == 0


def test_duplicate_number_is_a_business_rule_error(k3cloud):
    hook = make_hook()
    hook.save("BD_Customer", customer("DUP1"))
    with pytest.raises(BusinessRuleError) as info:
        hook.save("BD_Customer", customer("DUP1"))
    assert info.value.code == 11
    assert any("DUP1" in e.message for e in info.value.details)


def test_batch_save_maps_partial_failure_by_dindex(k3cloud):
    hook = make_hook()
    hook.save("BD_Customer", customer("B0003"))
    models = [customer("B0000"), customer("B0001", name=""), customer("B0002"), customer("B0003")]
    outcomes = hook.batch_save("BD_Customer", models)
    assert [(o.index, o.ok) for o in outcomes] == [(0, True), (1, False), (2, True), (3, False)]
    assert outcomes[0].number == "B0000" and outcomes[2].number == "B0002" and outcomes[0].id
    assert outcomes[1].msg_code == 11 and any(e.field_name == "FName" for e in outcomes[1].errors)
    assert all(isinstance(e, FieldError) for e in outcomes[1].errors)
    assert any("B0003" in e.message for e in outcomes[3].errors)
    assert sorted(r["FNumber"] for r in k3cloud.records("BD_Customer")) == ["B0000", "B0002", "B0003"]
    assert calls(k3cloud, "BatchSave") == 1


def test_batch_save_of_nothing_makes_no_call(k3cloud):
    assert make_hook().batch_save("BD_Customer", []) == []
    assert k3cloud.stats()["total"] == 0


def test_submit_audit_unaudit_delete_lifecycle(k3cloud):
    hook = make_hook()
    saved = hook.save("BD_Customer", customer("L0001"))
    assert [s.number for s in hook.submit("BD_Customer", numbers=["L0001"]).successes] == ["L0001"]
    assert [s.id for s in hook.audit("BD_Customer", ids=[saved.id]).successes] == [saved.id]
    assert hook.find_by_number("BD_Customer", "L0001", ["FNumber", "FDocumentStatus"]) == [
        {"FNumber": "L0001", "FDocumentStatus": "C"}
    ]
    with pytest.raises(BusinessRuleError):
        hook.delete("BD_Customer", numbers=["L0001"])  # audited documents cannot be deleted
    hook.unaudit("BD_Customer", numbers=["L0001"])
    hook.delete("BD_Customer", ids=[saved.id])
    assert hook.view("BD_Customer", number="L0001") is None
    assert hook.find_by_number("BD_Customer", "L0001") == []


def test_ids_and_numbers_are_validated_locally(k3cloud):
    hook = make_hook()
    with pytest.raises(ValueError):
        hook.submit("BD_Customer")
    with pytest.raises(TypeError):
        hook.submit("BD_Customer", numbers=[12])  # numbers must be strings (leading zeros)
    with pytest.raises(TypeError):
        hook.delete("BD_Customer", ids="1,2")
    assert k3cloud.stats()["total"] == 0


def test_view_returns_document_or_none(k3cloud):
    hook = make_hook()
    saved = hook.save("BD_Customer", customer("V0001", "查看客户"))
    by_number = hook.view("BD_Customer", number="V0001")
    by_id = hook.view("BD_Customer", id=saved.id)
    assert by_number is not None and by_number["Id"] == saved.id
    assert by_id is not None and by_id["Id"] == saved.id
    assert hook.view("BD_Customer", number="NOPE") is None


def test_execute_operation_forbid_and_enable(k3cloud):
    hook = make_hook()
    hook.save("BD_Customer", customer("OP001"), IsAutoSubmitAndAudit=True)
    result = hook.execute_operation("BD_Customer", "Forbid", numbers=["OP001"])
    assert [s.number for s in result.successes] == ["OP001"]
    assert hook.find_by_number("BD_Customer", "OP001", ["FForbidStatus"]) == [{"FForbidStatus": "B"}]
    hook.execute_operation("BD_Customer", "Enable", numbers=["OP001"])
    assert hook.find_by_number("BD_Customer", "OP001", ["FForbidStatus"]) == [{"FForbidStatus": "A"}]
    with pytest.raises(ValueError):
        hook.execute_operation("BD_Customer", "Forbid; drop", numbers=["OP001"])


def test_operation_on_some_missing_numbers_succeeds_for_the_rest(k3cloud):
    hook = make_hook()
    hook.save("BD_Customer", customer("PM001"))
    result = hook.submit("BD_Customer", numbers=["PM001", "PM404"])
    assert [s.number for s in result.successes] == ["PM001"]
    # The simulator (like the servers the spec cites) drops the not-found errors when others succeed.
    assert all("PM001" not in e.message for e in result.errors)
    with pytest.raises(BusinessRuleError) as info:
        hook.submit("BD_Customer", numbers=["PM404"])
    assert info.value.code == 10

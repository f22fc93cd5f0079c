"""AccountObj → BD_Customer with the shipped customers.yaml: packages, rejections, life_status, hashes, updates."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from .crm_records import account, accounts

from fxiaoke_k3cloud.mapping import parse_mapping, transform
from fxiaoke_k3cloud.mapping.hashing import canonical_json, column_hashes, payload_hash


def leaf_paths(node, prefix=""):
    out = set()
    if isinstance(node, dict):
        for k, v in node.items():
            out |= leaf_paths(v, f"{prefix}.{k}" if prefix else k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out |= leaf_paths(v, f"{prefix}[{i}]")
    else:
        out.add(prefix)
    return out


def run(mapping, *records, **kw):
    return transform(mapping, pd.DataFrame(list(records)), **kw)


def test_good_record_fills_the_full_package(customers_mapping):
    result = run(customers_mapping, account(1))
    assert result.counts == {"packages": 1, "rejected": 0, "parked": 0, "held": 0, "reported": 0}
    package = result.packages[0]
    model = package.model
    assert leaf_paths(model) == leaf_paths(customers_mapping.template)  # every template key is still there
    assert model["FCUSTID"] == 0
    assert model["FNumber"] == "CUST-000001"
    assert model["FName"] == "上海华创机械有限公司0001"
    assert model["FCustTypeId"] == {"FNumber": "KHLB001_SYS"}
    assert model["FGroup"] == {"FNumber": "KHFZ01"}  # CRM group "01" through the customer_groups value map
    assert model["FT_BD_CUSTCONTACT"][0]["FMOBILE"] == "13900000001"
    assert model["FT_BD_CUSTCONTACT"][0]["FNAME1"] == "陈明1"
    assert model["FT_BD_CUSTCONTACT"][0]["FIsDefaultConsignee"] == "false"  # unmapped row keys keep defaults
    assert model["FCreateOrgId"] == {"FNumber": "100"} and model["FUseOrgId"] == {"FNumber": "100"}
    assert model["FTRADINGCURRID"] == {"FNumber": "PRE001"}
    assert (package.source_id, package.source_name, package.number) == (account(1)["_id"], account(1)["name"], "CUST-000001")
    assert result.save_options["IsAutoSubmitAndAudit"] is True
    assert result.target == "BD_Customer"


def test_packages_do_not_share_mutable_state(customers_mapping):
    result = run(customers_mapping, account(1), account(2))
    first, second = (p.model for p in result.packages)
    again = result.packages[0].model
    first["FT_BD_CUSTCONTACT"][0]["FMOBILE"] = "changed"
    first["FCOUNTRY"]["FNumber"] = "changed"
    assert second["FT_BD_CUSTCONTACT"][0]["FMOBILE"] == "13900000002"
    assert second["FCOUNTRY"]["FNumber"] == "China"
    assert again["FT_BD_CUSTCONTACT"][0]["FMOBILE"] == "13900000001"
    assert customers_mapping.template["FCOUNTRY"]["FNumber"] == "China"


def test_empty_optional_field_keeps_the_template_default(customers_mapping):
    result = run(customers_mapping, account(1, tel=None, field_G45nC__c="   ", field_IdOci__c=None))
    model = result.packages[0].model
    assert model["FTEL"] == ""
    assert model["FT_BD_CUSTCONTACT"][0]["FMOBILE"] == ""
    assert model["FGroup"] == {"FNumber": ""}


def test_missing_column_counts_as_empty(customers_mapping):
    frame = pd.DataFrame([account(1)]).drop(columns=["tel", "address"])
    assert transform(customers_mapping, frame).packages[0].model["FADDRESS"] == ""


# id, overrides, CRM field, K3 target, fragments of the reason
BAD = [
    ("missing-name", {"name": None}, "name", "FName", ["name is required but empty (FName)"]),
    ("blank-name", {"name": "   "}, "name", "FName", ["name='   ' is required but empty"]),
    ("unknown-type", {"field_n5V1I__c": "VIP"}, "field_n5V1I__c", "FCustTypeId.FNumber",
     ["field_n5V1I__c='VIP' has no entry in value map customer_types (FCustTypeId.FNumber); "
      "allowed: KHLB001_SYS, KHLB002_SYS"]),
    ("missing-number", {"field_fnfcA__c": ""}, "field_fnfcA__c", "FNumber", ["is required but empty (FNumber)"]),
    ("huge-name", {"name": "名" * 81}, "name", "FName", ["is 81 characters long; at most 80 allowed (FName)"]),
    ("bad-phone", {"tel": "call me"}, "tel", "FTEL", ["tel='call me' is not a phone number (FTEL)"]),
    ("list-in-text-field", {"address": ["a", "b"]}, "address", "FADDRESS", ["is a list, not a single value"]),
    # A value map hashes the column's values: one list or dict must reject its record, not fail the batch.
    ("list-in-value-mapped-field", {"field_IdOci__c": ["01"]}, "field_IdOci__c", "FGroup.FNumber",
     ["field_IdOci__c=['01'] is a list, not a single value (add transform: first for lists) (FGroup.FNumber)"]),
    ("dict-in-value-mapped-field", {"field_n5V1I__c": {"code": "KHLB001_SYS"}}, "field_n5V1I__c",
     "FCustTypeId.FNumber", ["field_n5V1I__c={'code': 'KHLB001_SYS'} is a dict, not a single value"]),
    ("unknown-status", {"life_status": "deleted"}, "life_status", "", ["life_status='deleted' is not a known status"]),
]


@pytest.mark.parametrize(("overrides", "field", "target", "fragments"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_record_is_rejected_with_a_clear_reason_and_the_rest_go_on(customers_mapping, overrides, field, target,
                                                                       fragments):
    bad = account(2, **overrides)
    result = run(customers_mapping, account(1), bad, account(3))
    assert [p.source_id for p in result.packages] == [account(1)["_id"], account(3)["_id"]]
    assert len(result.rejected) == 1
    rejection = result.rejected[0]
    assert rejection.source_id == bad["_id"]
    assert (rejection.source_field, rejection.target) == (field, target)
    shown = bad["name"] if len(bad["name"] or "") <= 60 else bad["name"][:60] + "…"  # long names are shortened
    assert rejection.reason.startswith(f"AccountObj {bad['_id']}/{shown!r}: " if bad["name"] else "AccountObj ")
    for fragment in fragments:
        assert fragment in rejection.reason


def test_a_number_beside_text_in_a_value_mapped_column_is_keyed_by_its_text(customers_mapping):
    text = Path(customers_mapping.file).read_text(encoding="utf-8")
    numeric = parse_mapping(text.replace('"02": KHFZ02', '"2": KHFZ02'))
    mixed = run(numeric, account(1, field_IdOci__c="01"), account(2, field_IdOci__c=2), account(3, field_IdOci__c=9))
    alone = run(numeric, account(2, field_IdOci__c=2))  # an all-number column is keyed by text too
    assert [p.model["FGroup"]["FNumber"] for p in mixed.packages] == ["KHFZ01", "KHFZ02"]
    assert alone.packages[0].model["FGroup"]["FNumber"] == "KHFZ02"
    [rejection] = mixed.rejected
    assert rejection.source_id == account(3)["_id"] and "field_IdOci__c=9 has no entry in value map" in rejection.reason


def test_all_problems_of_a_record_are_reported_together(customers_mapping):
    result = run(customers_mapping, account(1, name=None, field_n5V1I__c="VIP", tel="x"))
    problems = result.rejected[0].problems
    assert [(p.source_field, p.target) for p in problems] == [
        ("name", "FName"), ("field_n5V1I__c", "FCustTypeId.FNumber"), ("tel", "FTEL")]
    assert problems[1].value == "VIP"


def test_emoji_and_mixed_scripts_are_kept_intact(customers_mapping):
    name = "ACME 株式会社 😀 Ünïcödé 𠀋 مرحبا"
    result = run(customers_mapping, account(1, name=name, field_zW12m__c="👩‍💻 李"))
    model = result.packages[0].model
    assert model["FName"] == name
    assert model["FT_BD_CUSTCONTACT"][0]["FNAME1"] == "👩‍💻 李"
    assert model["FShortName"] == name  # shorter than the truncate limit: untouched


def test_truncate_cuts_by_characters_not_bytes(customers_mapping):
    name = "😀" * 50
    model = run(customers_mapping, account(1, name=name)).packages[0].model
    assert model["FShortName"] == "😀" * 40
    assert model["FName"] == name


def test_life_status_pushes_reports_and_holds(customers_mapping):
    records = [account(1), account(2, life_status="invalid"), account(3, life_status="under_review"),
               account(4, life_status="in_change"), account(5, life_status="ineffective")]
    result = run(customers_mapping, *records)
    assert [p.source_id for p in result.packages] == [records[0]["_id"]]
    assert [(s.source_id, s.status, s.number) for s in result.reported] == [(records[1]["_id"], "invalid", "CUST-000002")]
    assert [s.status for s in result.held] == ["under_review", "in_change", "ineffective"]
    assert "is held until it becomes normal" in result.held[0].reason
    assert not result.rejected


def test_invalid_records_are_reported_even_with_bad_data(customers_mapping):
    result = run(customers_mapping, account(1, life_status="invalid", name=None, field_n5V1I__c="VIP"))
    assert len(result.reported) == 1 and not result.rejected


def test_duplicate_ids_keep_the_last_copy(customers_mapping):
    result = run(customers_mapping, account(1, name="old"), account(1, name="new"))
    assert [p.source_name for p in result.packages] == ["new"]


def test_two_records_with_one_number_reject_the_second(customers_mapping):
    first, second = account(1), account(2, field_fnfcA__c="cust-000001")  # upper-cased by the number rule
    result = run(customers_mapping, first, second)
    assert [p.source_id for p in result.packages] == [first["_id"]]
    assert f"is also the number of {first['_id']}" in result.rejected[0].reason


def test_hash_is_stable_across_column_order_and_template(customers_mapping):
    frame = pd.DataFrame([account(1), account(2)])
    shuffled = frame[list(reversed(frame.columns))]
    a = [p.payload_hash for p in transform(customers_mapping, frame).packages]
    b = [p.payload_hash for p in transform(customers_mapping, shuffled).packages]
    assert a == b and a[0] != a[1]
    text = Path(customers_mapping.file).read_text(encoding="utf-8")
    changed = parse_mapping(text.replace('FWEBSITE: ""', 'FWEBSITE: "https://example.com"'))
    assert changed.template != customers_mapping.template
    assert [p.payload_hash for p in transform(changed, frame).packages] == a


def test_hash_changes_when_a_mapped_value_changes(customers_mapping):
    before = run(customers_mapping, account(1)).packages[0].payload_hash
    after = run(customers_mapping, account(1, tel="021-99999999")).packages[0].payload_hash
    unmapped = run(customers_mapping, account(1, account_type="2")).packages[0].payload_hash
    assert before != after
    assert before == unmapped


def test_hash_is_sha256_of_canonical_json_of_mapped_values(customers_mapping):
    package = run(customers_mapping, account(1)).packages[0]
    mapped = package.mapped
    reordered = dict(reversed(list(mapped.items())))
    assert payload_hash(reordered) == payload_hash(mapped) == package.payload_hash
    assert json.loads(canonical_json(mapped)) == mapped
    assert list(json.loads(canonical_json(mapped))) == sorted(mapped)


def test_column_hashes_equal_the_reference_definition():
    texts = ["b", "a", "c"]
    columns = [["x", 'q"uote\\', "中文😀"], [1, 2.5, True], [None, "", 0]]
    expected = [payload_hash(dict(zip(texts, row))) for row in zip(*columns)]
    assert column_hashes(texts, columns) == expected


def test_update_model_has_only_pk_and_mapped_fields(customers_mapping):
    package = run(customers_mapping, account(1)).packages[0]
    update = package.update_model(123456)
    assert update == {
        "FCUSTID": 123456, "FNumber": "CUST-000001", "FName": "上海华创机械有限公司0001",
        "FShortName": "上海华创机械有限公司0001", "FCustTypeId": {"FNumber": "KHLB001_SYS"},
        "FGroup": {"FNumber": "KHFZ01"}, "FTEL": "021-55550001", "FADDRESS": "上海市工业园区1号",
        "FT_BD_CUSTCONTACT": [{"FNAME1": "陈明1", "FMOBILE": "13900000001"}],
    }
    assert package.need_update_fields == ["FNumber", "FName", "FShortName", "FCustTypeId", "FGroup", "FTEL",
                                          "FADDRESS", "FT_BD_CUSTCONTACT", "FNAME1", "FMOBILE"]
    with_ids = package.update_model(123456, entry_ids={"FT_BD_CUSTCONTACT": [777]})
    assert with_ids["FT_BD_CUSTCONTACT"] == [{"FNAME1": "陈明1", "FMOBILE": "13900000001", "FENTRYID": 777}]
    request = package.update_request(123456, {"IsAutoSubmitAndAudit": True})
    assert request["NeedUpDateFields"] == package.need_update_fields and request["Model"]["FCUSTID"] == 123456
    assert package.create_request()["Model"] == package.model
    assert package.model is not package.model  # fresh each time: safe to modify


def test_empty_batch_gives_an_empty_result(customers_mapping):
    result = transform(customers_mapping, pd.DataFrame())
    assert result.counts == {"packages": 0, "rejected": 0, "parked": 0, "held": 0, "reported": 0}


def test_large_generated_batch_is_all_accepted(customers_mapping):
    result = transform(customers_mapping, accounts(2000))
    assert len(result.packages) == 2000 and not result.rejected
    assert len({p.payload_hash for p in result.packages}) == 2000

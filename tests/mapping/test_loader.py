"""Mapping files: the shipped ones load; broken ones fail naming the file, the key path and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fxiaoke_k3cloud.errors import MappingError
from fxiaoke_k3cloud.mapping import FlowMapping, load_mapping, parse_mapping

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = ROOT / "include" / "mappings"

MINIMAL = """
version: 1
source: {object: AccountObj, modified_field: last_modified_time}
target: {form_id: BD_Customer, pk: FCUSTID, number: FNumber}
number_rule: {source: field_fnfcA__c}
value_maps:
  customer_types: {KHLB001_SYS: KHLB001_SYS}
template:
  FCUSTID: 0
  FNumber: ""
  FName: ""
  FCustTypeId: {FNumber: ""}
  FT_BD_CUSTCONTACT: [{FENTRYID: 0, FMOBILE: ""}]
fields:
  - {target: FName, source: name, required: true}
  - {target: FCustTypeId.FNumber, source: field_n5V1I__c, value_map: customer_types}
"""

BAD_LINE = f"line {len(MINIMAL.splitlines()) + 2}"  # after MINIMAL and the blank line the cases add


def edit(change) -> str:
    """MINIMAL with ``change(data)`` applied, dumped back to YAML."""
    data = yaml.safe_load(MINIMAL)
    change(data)
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def _set(path: list, value):
    def change(data):
        node = data
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value
    return change


def _delete(key: str):
    return lambda data: data.pop(key)


# id, YAML text, expected key, fragments the message must contain
INVALID = [
    ("unknown-field-key", edit(lambda d: d["fields"][1].update({"trasform": "strip"})), "fields[1].trasform",
     ["unknown key", "allowed: source, target, transform, required, value_map, default, lookup, on_missing, max_length"]),
    ("unknown-top-key", edit(_set(["fieldz"], [])), "fieldz", ["unknown key", "allowed: version"]),
    ("unknown-transform", edit(lambda d: d["fields"][0].update({"transform": "titlecase"})), "fields[0].transform[0]",
     ["unknown transform 'titlecase'", "truncate"]),
    ("transform-bad-arg", edit(lambda d: d["fields"][0].update({"transform": {"name": "truncate", "mx": 8}})),
     "fields[0].transform[0].mx", ["unknown argument", "allowed: name, max"]),
    ("transform-missing-arg", edit(lambda d: d["fields"][0].update({"transform": "truncate"})),
     "fields[0].transform[0]", ["needs argument 'max'"]),
    ("unknown-value-map", edit(lambda d: d["fields"][1].update({"value_map": "cust_types"})), "fields[1].value_map",
     ["no value map named 'cust_types'", "customer_types"]),
    ("unknown-lookup", edit(lambda d: d["fields"][1].update({"value_map": None, "lookup": "customers"})),
     "fields[1].lookup", ["no lookup named 'customers'"]),
    ("target-not-in-template", edit(lambda d: d["fields"][0].update({"target": "FNmae"})), "fields[0].target",
     ["'FNmae' is not a key", "FName"]),
    ("target-row-out-of-range", edit(lambda d: d["fields"][0].update({"target": "FT_BD_CUSTCONTACT[1].FMOBILE"})),
     "fields[0].target", ["has 1 row(s)"]),
    ("target-is-object", edit(lambda d: d["fields"][1].update({"target": "FCustTypeId"})), "fields[1].target",
     ["is a object", "FCustTypeId.FNumber"]),
    ("target-malformed", edit(lambda d: d["fields"][0].update({"target": "FName; import os"})), "fields[0].target",
     ["is not a path"]),
    ("duplicate-target", edit(lambda d: d["fields"].append({"target": "FName", "source": "account_no"})),
     "fields[2].target", ["already written by fields[0].target"]),
    ("number-target-mapped-twice", edit(lambda d: d["fields"].append({"target": "FNumber", "source": "x"})),
     "fields[2].target", ["already written by number_rule"]),
    ("missing-template", edit(_delete("template")), "template", ["required key is missing"]),
    ("missing-number-rule", edit(_delete("number_rule")), "number_rule", ["required key is missing"]),
    ("wrong-type-bool", edit(lambda d: d["fields"][0].update({"required": "yes"})), "fields[0].required",
     ["valid boolean", "'yes'"]),
    ("wrong-type-org-number", edit(_set(["defaults"], {"org": 100})), "defaults.org", ["valid string", "100"]),
    ("wrong-version", edit(_set(["version"], 2)), "version", ["1"]),
    ("on-missing-without-lookup", edit(lambda d: d["fields"][0].update({"on_missing": "park"})),
     "fields[0].on_missing", ["only applies to a field with a lookup"]),
    ("bad-on-missing", edit(lambda d: d["fields"][1].update({"value_map": None, "lookup": "x", "on_missing": "skip"})),
     "fields[1].on_missing", ["'reject' or 'park'"]),
    ("life-status-overlap", edit(_set(["life_status"], {"push": ["normal"], "hold": ["normal"]})), "life_status.hold",
     ["'normal' is listed in both push and hold"]),
    ("placeholder-left-in-template", edit(lambda d: d["template"].update({"FName": "{{name}}"})), "template",
     ["placeholder", "fields:"]),
    ("bad-timezone", edit(_set(["defaults"], {"timezone": "Mars/Olympus"})), "defaults.timezone", ["unknown timezone"]),
    ("value-map-nested", edit(_set(["value_maps", "customer_types", "KHLB001_SYS"], {"a": 1})),
     "value_maps.customer_types.KHLB001_SYS", ["text or a number"]),
    ("projection-misses-field", edit(_set(["source", "fields"], ["_id", "name"])), "source.fields",
     ["leaves out", "field_fnfcA__c"]),
    ("save-options-typo", edit(_set(["save_options"], {"IsAutoSubmitAndAdit": True})), "save_options.IsAutoSubmitAndAdit",
     ["unknown key", "IsAutoSubmitAndAudit"]),
    ("k3-target-without-form", edit(_set(["target"], {"pk": "FCUSTID", "number": "FNumber"})), "target.form_id",
     ["needs form_id"]),
    ("forbid-on-a-bill", MINIMAL.replace("form_id: BD_Customer", "form_id: SAL_SaleOrder") + "\non_source_void: forbid\n",
     "on_source_void", ["'forbid' does not apply to SAL_SaleOrder (a bill)", "allowed: report, cancel, close"]),
    ("cancel-on-base-data", MINIMAL + "\non_source_delete: cancel\n", "on_source_delete",
     ["'cancel' does not apply to BD_Customer (base data)", "allowed: report, forbid"]),
    ("unknown-source-action", MINIMAL + "\non_source_delete: delete\n", "on_source_delete",
     ["'report', 'forbid', 'cancel' or 'close'", "'delete'"]),
    ("python-tag", MINIMAL + "\nevil: !!python/object/apply:os.system ['echo pwned']\n", BAD_LINE,
     ["!!python", "data, not code"]),
    ("duplicate-yaml-key", MINIMAL + "\nfields: []\n", BAD_LINE, ["duplicate key 'fields'"]),
    ("not-a-mapping", "- just\n- a list\n", None, ["must be a YAML mapping"]),
]


@pytest.mark.parametrize(("text", "key", "fragments"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_mapping_names_file_key_and_fix(tmp_path, text, key, fragments):
    path = tmp_path / "customers.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MappingError) as caught:
        load_mapping(path)
    err = caught.value
    assert err.file == str(path)
    assert err.key == key
    message = str(err)
    assert message.startswith(f"{path}: " + (f"{key}: " if key else ""))
    for fragment in fragments:
        assert fragment in message


def test_minimal_mapping_loads():
    mapping = parse_mapping(MINIMAL, file="minimal.yaml")
    assert isinstance(mapping, FlowMapping)
    assert mapping.file == "minimal.yaml"
    assert mapping.fields[0].transform == []


def test_transform_shorthands_normalise_to_calls():
    text = edit(lambda d: d["fields"][0].update({"transform": ["strip", {"name": "truncate", "max": 5}]}))
    mapping = parse_mapping(text)
    calls = [(t.name, t.args) for t in mapping.fields[0].transform]
    assert calls == [("strip", {}), ("truncate", {"max": 5})]


def test_missing_file_is_a_mapping_error(tmp_path):
    with pytest.raises(MappingError) as caught:
        load_mapping(tmp_path / "nope.yaml")
    assert caught.value.file.endswith("nope.yaml")


@pytest.mark.parametrize("name", ["customers.yaml", "sales_orders.yaml", "deliveries.yaml"])
def test_shipped_mappings_load(name):
    mapping = load_mapping(MAPPINGS / name)
    assert mapping.version == 1
    assert mapping.target.system in {"k3cloud", "fxiaoke"}


def test_customers_template_keeps_every_key_of_the_field_package():
    import json

    # A copy of shared/specs/bd_customer_package_from_field.json kept with the tests (CI need not have shared/).
    package = json.loads((ROOT / "tests" / "k3cloud_sim" / "data" / "bd_customer_package_from_field.json").read_text())
    mapping = load_mapping(MAPPINGS / "customers.yaml")

    def keys(node, prefix=""):
        out = set()
        if isinstance(node, dict):
            for k, v in node.items():
                out |= {f"{prefix}{k}"} | keys(v, f"{prefix}{k}.")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                out |= keys(v, f"{prefix}[{i}].")
        return out

    assert keys(mapping.template) == keys(package["data"]["Model"])
    assert "603" not in json.dumps(mapping.template)


def test_readme_documents_every_key_and_transform():
    from fxiaoke_k3cloud.mapping import REGISTRY, schema

    readme = (MAPPINGS / "README.md").read_text(encoding="utf-8")
    models = [obj for obj in vars(schema).values()
              if isinstance(obj, type) and issubclass(obj, schema.Strict) and obj is not schema.Strict]
    undocumented = sorted({f"{m.__name__}.{key}" for m in models for key in m.model_fields
                           if m is not schema.TransformCall and f"`{key}`" not in readme})
    assert undocumented == []
    assert sorted(name for name in REGISTRY if f"`{name}`" not in readme) == []

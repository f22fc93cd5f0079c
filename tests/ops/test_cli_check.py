"""`python -m fxiaoke_k3cloud check` validates mappings and connections; every command names the store it read,
and without $AIRFLOW_HOME the checkout's own .airflow/ store is found (not ~/airflow)."""

from __future__ import annotations

import io
import json

import pytest
from simproc import k3cloud_conn

from fxiaoke_k3cloud import cli


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return cli.main(argv, out=out, err=err), out.getvalue(), err.getvalue()


def test_check_passes_with_valid_mappings_and_working_connections(k3cloud, fxiaoke) -> None:
    code, out, _ = run(["check"])
    assert code == cli.EXIT_OK, out
    from fxiaoke_k3cloud.flows.specs import FLOWS

    assert out.count("ok    mapping") == len(FLOWS) and "ok    mapping receipts" in out  # one per registry flow
    assert "ok    mapping contacts" in out
    assert "ok    connection fxiaoke_default" in out and "ok    connection k3cloud_default" in out


def test_check_names_the_invalid_mapping_file_and_key(tmp_path, monkeypatch) -> None:
    from fxiaoke_k3cloud.flows.specs import mappings_dir

    for f in mappings_dir().glob("*.yaml"):
        (tmp_path / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    text = (tmp_path / "sales_orders.yaml").read_text(encoding="utf-8")
    (tmp_path / "sales_orders.yaml").write_text(text + "\ntypo_key: 1\n", encoding="utf-8")
    monkeypatch.setenv("SYNC_MAPPINGS_DIR", str(tmp_path))
    code, out, _ = run(["check", "--no-connections"])
    assert code == cli.EXIT_CHECK
    assert "FAIL  mapping orders:" in out and "sales_orders.yaml" in out and "typo_key" in out
    assert "ok    mapping customers" in out
    assert "1 check(s) failed" in out


def test_check_says_what_to_fix_for_a_refused_login(k3cloud, fxiaoke, monkeypatch) -> None:
    wrong = json.loads(k3cloud_conn(k3cloud))
    wrong["password"] = "typo"
    monkeypatch.setenv("AIRFLOW_CONN_K3CLOUD_DEFAULT", json.dumps(wrong))
    code, out, _ = run(["check"])
    assert code == cli.EXIT_CHECK
    line = next(x for x in out.splitlines() if "connection k3cloud_default" in x)
    assert line.startswith("FAIL") and "password" in line and "65a1b2c3d4e5f6" not in line


@pytest.mark.parametrize("command", [["report"], ["history", "CUST-1"]])
def test_without_airflow_home_the_checkout_store_is_read_and_named(command, tmp_path, monkeypatch) -> None:
    home = tmp_path / ".airflow"
    home.mkdir()
    monkeypatch.setattr(cli, "PROJECT_HOME", home)
    monkeypatch.delenv("SYNC_AUDIT_URL", raising=False)
    monkeypatch.delenv("AIRFLOW_HOME")
    try:
        code, out, err = run(command)
    finally:
        monkeypatch.undo()
    assert code == cli.EXIT_OK
    assert f"Audit store: sqlite:///{home / 'sync_audit.db'}" in err
    assert "SQLite fallback" in err


def test_fields_lists_the_tenants_fields_against_the_mapping_and_suggests_lines(fxiaoke) -> None:
    code, out, _ = run(["fields", "AccountObj"])
    assert code == cli.EXIT_OK, out
    assert "compared with the customers mapping" in out
    row = next(x for x in out.splitlines() if x.startswith("field_fnfcA__c"))
    assert row.rstrip().endswith("mapped")  # the simulator has the shipped mapping's custom fields
    assert "this tenant does not have" not in out


def test_fields_names_mapping_fields_a_tenant_lacks(fxiaoke, tmp_path, monkeypatch) -> None:
    from fxiaoke_k3cloud.flows.specs import mappings_dir

    for f in mappings_dir().glob("*.yaml"):
        (tmp_path / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    text = (tmp_path / "customers.yaml").read_text(encoding="utf-8")
    (tmp_path / "customers.yaml").write_text(text.replace("field_G45nC__c]", "field_G45nC__c, field_other__c]"),
                                             encoding="utf-8")
    monkeypatch.setenv("SYNC_MAPPINGS_DIR", str(tmp_path))
    code, out, _ = run(["fields", "AccountObj", "--format", "json"])
    data = json.loads(out)
    assert data["not_in_tenant"] == ["field_other__c"] and data["flow"] == "customers"
    code, out, _ = run(["fields", "AccountObj"])
    assert "The mapping reads 1 field(s) this tenant does not have" in out and "  field_other__c" in out


def test_suggested_lines_use_transforms_that_exist() -> None:
    from fxiaoke_k3cloud.mapping.transforms import REGISTRY

    for kind in ("date", "date_time", "number", "employee"):
        line = cli.suggest_line("field_x__c", {"label": "x", "type": kind})
        name = line.split("transform: ")[1].split()[0]
        assert name in REGISTRY, (kind, name)

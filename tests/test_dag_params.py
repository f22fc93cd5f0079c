"""The trigger form: optional params are optional (their schema admits null), and each flow's doc says what a
backfill does with them."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

from fxiaoke_k3cloud.dag_common import window_params

ROOT = Path(__file__).resolve().parents[1]
FLOW_DAGS = ["fxiaoke_customers_to_k3cloud", "fxiaoke_orders_to_k3cloud", "k3cloud_deliveries_to_fxiaoke",
             "k3cloud_receipts_to_fxiaoke"]


def test_every_window_param_is_optional_in_the_trigger_form() -> None:
    params = window_params(ids_of="CRM ids", full_resync="x", dry_run="y")
    assert set(params) == {"since", "until", "ids", "full_resync", "dry_run"}
    for name, param in params.items():
        assert "null" in param.schema["type"], name  # Airflow's form marks a param required unless null is allowed
        jsonschema.validate(None, param.schema)  # an emptied field is accepted
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate("yes", params["dry_run"].schema)  # still typed


@pytest.mark.parametrize("dag_id", FLOW_DAGS)
def test_dag_doc_says_what_a_backfill_does_with_the_params(dag_id: str) -> None:
    doc = (ROOT / "dags" / f"{dag_id}.py").read_text(encoding="utf-8")
    assert "**Backfill and the params.**" in doc
    for name in ("`since`/`until`", "`full_resync`", "`ids`"):
        assert name in doc.split("**Backfill and the params.**")[1].split('"""')[0], name

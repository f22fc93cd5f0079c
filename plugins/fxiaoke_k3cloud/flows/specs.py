"""What each CRM → ERP flow is: its source object, target form, mapping file, audit entity and batch size."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from fxiaoke_k3cloud.errors import ConfigError

_REPO_MAPPINGS = Path(__file__).resolve().parents[3] / "include" / "mappings"


def mappings_dir() -> Path:
    """``$SYNC_MAPPINGS_DIR``, else ``include/mappings`` of this checkout (also under Airflow's dags folder)."""
    configured = os.environ.get("SYNC_MAPPINGS_DIR")
    if configured:
        return Path(configured)
    if _REPO_MAPPINGS.is_dir():
        return _REPO_MAPPINGS
    airflow_home = Path(os.environ.get("AIRFLOW_HOME", "/opt/airflow"))
    return airflow_home / "include" / "mappings"


@dataclass(frozen=True)
class FlowSpec:
    name: str
    dag_id: str
    entity: str
    source_object: str
    mapping_file: str
    target_form: str
    modified_field: str = "last_modified_time"
    lookback: timedelta = timedelta(minutes=10)
    #: How long the source's search index may trail its writes: the watermark never passes now - index_lag.
    index_lag: timedelta = timedelta(seconds=5)
    batch_size: int = 50

    @property
    def mapping_path(self) -> Path:
        return mappings_dir() / self.mapping_file


FLOWS: dict[str, FlowSpec] = {
    "customers": FlowSpec(
        name="customers",
        dag_id="fxiaoke_customers_to_k3cloud",
        entity="customer",
        source_object="AccountObj",
        mapping_file="customers.yaml",
        target_form="BD_Customer",
    ),
    "orders": FlowSpec(
        name="orders",
        dag_id="fxiaoke_orders_to_k3cloud",
        entity="order",
        source_object="SalesOrderObj",
        mapping_file="sales_orders.yaml",
        target_form="SAL_SaleOrder",
    ),
    # K3Cloud → Fxiaoke: the source is K3Cloud (modified field FApproveDate, UTC+8 local), the target the CRM.
    "deliveries": FlowSpec(
        name="deliveries",
        dag_id="k3cloud_deliveries_to_fxiaoke",
        entity="delivery",
        source_object="SAL_DELIVERYNOTICE",
        mapping_file="deliveries.yaml",
        target_form="DeliveryNoteObj",
        modified_field="FApproveDate",
        index_lag=timedelta(0),  # K3Cloud's query reads the database itself
    ),
}


def flow_spec(name: str) -> FlowSpec:
    try:
        return FLOWS[name]
    except KeyError:
        raise ConfigError(f"unknown flow {name!r}; known: {', '.join(sorted(FLOWS))}") from None

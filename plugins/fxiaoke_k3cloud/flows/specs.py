"""The flow registry: what each flow is — source object, target form, mapping file, audit entity, batch size, the
steps its DAG runs in order, the flows it depends on, and which operations (re-drive, reconciliation) apply to it.

Re-drive, reconciliation and the DAG factory read this registry; a new flow gets them by its entry here.
Imported at DAG parse time: standard library only (steps are named, and imported only when they run).
"""

from __future__ import annotations

import importlib
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
    #: ``crm_to_k3`` (source Fxiaoke, target K3Cloud) or ``k3_to_crm`` (source K3Cloud, target Fxiaoke).
    direction: str = "crm_to_k3"
    modified_field: str = "last_modified_time"
    lookback: timedelta = timedelta(minutes=10)
    #: How long the source's search index may trail its writes: the watermark never passes now - index_lag.
    index_lag: timedelta = timedelta(seconds=5)
    batch_size: int = 50
    #: The steps the flow's DAG runs in order (``module:function``, or a function of ``flows.steps``). The first
    #: is called ``step(flow, context)``, each later one ``step(flow, previous_result, context)``.
    steps: tuple[str, ...] = ("extract", "transform", "load")
    #: Flows whose records this flow's records reference (synced first when re-driving everything).
    depends_on: tuple[str, ...] = ()
    #: Whether ``sync_redrive`` / ``sync_reconcile`` handle this flow (any direction).
    redrive: bool = True
    reconcile: bool = True
    #: The flow's own module (``fxiaoke_k3cloud.flows.orders``): named hooks the one pipeline (``flows.steps``)
    #: and its adapters call when the module defines them. CRM → K3Cloud: ``extract`` (replaces the generic
    #: extract), ``staged_lines`` (entry rows for the transform), ``lookups`` (tables not resolved through an id
    #: map), ``read_all`` (every record, for reconciliation), ``reconcile_extras`` / ``reconcile_drifts`` (more
    #: ERP documents / checks). K3Cloud → CRM: ``normalise``, ``reversals``, ``prepare`` (extract), ``transform``
    #: and ``load`` (required: the CRM side's mapping and writes), see ``flows.k3_pipeline``. None: the generic
    #: pipeline alone.
    module: str | None = None

    @property
    def mapping_path(self) -> Path:
        return mappings_dir() / self.mapping_file


_STEPS = "fxiaoke_k3cloud.flows.steps"
_DELIVERIES = "fxiaoke_k3cloud.flows.deliveries"
_RECEIPTS = "fxiaoke_k3cloud.flows.receipts"
WRITE_BACK = "fxiaoke_k3cloud.flows.writeback:write_back"

FLOWS: dict[str, FlowSpec] = {
    "customers": FlowSpec(
        name="customers",
        dag_id="fxiaoke_customers_to_k3cloud",
        entity="customer",
        source_object="AccountObj",
        mapping_file="customers.yaml",
        target_form="BD_Customer",
        steps=("extract", "transform", "load", WRITE_BACK),
    ),
    "orders": FlowSpec(
        name="orders",
        dag_id="fxiaoke_orders_to_k3cloud",
        entity="order",
        source_object="SalesOrderObj",
        mapping_file="sales_orders.yaml",
        target_form="SAL_SaleOrder",
        steps=("extract", "sync_dependencies", "transform", "load", WRITE_BACK),
        depends_on=("customers",),
        module="fxiaoke_k3cloud.flows.orders",
    ),
    "contacts": FlowSpec(
        name="contacts",
        dag_id="fxiaoke_contacts_to_k3cloud",
        entity="contact",
        source_object="ContactObj",
        mapping_file="contacts.yaml",
        target_form="BD_CommonContact",
        steps=("extract", "sync_dependencies", "transform", "load"),
        depends_on=("customers",),
    ),
    # K3Cloud → Fxiaoke: the source is K3Cloud (modified field FApproveDate, UTC+8 local), the target the CRM.
    "deliveries": FlowSpec(
        name="deliveries",
        dag_id="k3cloud_deliveries_to_fxiaoke",
        entity="delivery",
        source_object="SAL_DELIVERYNOTICE",
        mapping_file="deliveries.yaml",
        target_form="DeliveryNoteObj",
        direction="k3_to_crm",
        modified_field="FApproveDate",
        index_lag=timedelta(0),  # K3Cloud's query reads the database itself
        module=_DELIVERIES,
    ),
    # K3Cloud → Fxiaoke: audited receipt bills (收款单) → CRM payments with one line per order paid.
    "receipts": FlowSpec(
        name="receipts",
        dag_id="k3cloud_receipts_to_fxiaoke",
        entity="receipt",
        source_object="AR_RECEIVEBILL",
        mapping_file="receipts.yaml",
        target_form="PaymentObj",
        direction="k3_to_crm",
        modified_field="FApproveDate",
        index_lag=timedelta(0),  # K3Cloud's query reads the database itself
        depends_on=("orders",),
        module=_RECEIPTS,
    ),
}


# --- change events (issue 17): the asset that wakes a flow's DAG, one per watched source object -------------------
#: Asset name by source object (K3Cloud form id or CRM object api name): the watched sources. The name is also the
#: watcher's trigger name and its position key in the watermark table, and callers (receiver paths, docs) use it:
#: never rename one once deployed. A source listed here gets its watcher (monitored by the silent-watcher alert) and
#: is accepted by the push receiver; a flow's DAG schedules on it with ``events.assets.flow_asset(flow)``. A flow
#: whose source is not listed has no event (schedule only).
EVENT_ASSETS: dict[str, str] = {
    "SAL_DELIVERYNOTICE": "k3cloud_audited_delivery_notices",
    "AR_RECEIVEBILL": "k3cloud_audited_receipt_bills",
    "AccountObj": "fxiaoke_changed_accounts",
    "SalesOrderObj": "fxiaoke_changed_sales_orders",
    "ContactObj": "fxiaoke_changed_contacts",
}


def event_source(spec: FlowSpec) -> str:
    """The system whose changes wake the flow: ``k3cloud`` (audits) or ``fxiaoke`` (CRM edits)."""
    return "k3cloud" if spec.direction == "k3_to_crm" else "fxiaoke"


def event_asset(spec: FlowSpec) -> str | None:
    """The name of the asset rung when the flow's source object changes, or None when it is not watched."""
    return EVENT_ASSETS.get(spec.source_object)


def event_sources() -> list[tuple[str, str, str]]:
    """Every watched source once: ``(source system, source object, asset name)``, K3Cloud first, registry order."""
    unique = list(dict.fromkeys((event_source(s), s.source_object, event_asset(s)) for s in FLOWS.values()
                                if event_asset(s)))
    return sorted(unique, key=lambda e: e[0] != "k3cloud")  # stable: registry order within a system


def flow_spec(name: str) -> FlowSpec:
    try:
        return FLOWS[name]
    except KeyError:
        raise ConfigError(f"unknown flow {name!r}; known: {', '.join(sorted(FLOWS))}") from None


def resolve_step(step: str):
    """The function a step name names (``module:function``, or a function of ``flows.steps``)."""
    module, _, name = step.rpartition(":")
    # Imported when the step runs, not at import of this module: the registry is read when DAG files are
    # parsed, and the pipeline pulls in pandas and the hooks.
    return getattr(importlib.import_module(module or _STEPS), name)


def flow_hook(spec: FlowSpec, name: str):
    """The flow module's hook ``name`` (see ``FlowSpec.module``), or None when the flow has none."""
    if not spec.module:
        return None
    # Imported when a step runs, not at import of this module (DAG parsing stays cheap).
    return getattr(importlib.import_module(spec.module), name, None)


def ordered(names) -> list[str]:
    """``names`` with every flow after the flows it depends on (registry order otherwise)."""
    asked = set(names)
    wanted = [n for n in FLOWS if n in asked]
    done: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in done:
            return
        if name in path:
            raise ConfigError(f"flow dependencies form a cycle: {' → '.join(path + (name,))}")
        for dep in flow_spec(name).depends_on:
            if dep in wanted:
                visit(dep, path + (name,))
        done.append(name)

    for name in wanted:
        visit(name, ())
    return done


def redrive_flows() -> list[str]:
    """Flows ``sync_redrive`` handles, dependencies first."""
    return ordered(n for n, s in FLOWS.items() if s.redrive)


def reconciled_flows() -> list[str]:
    return ordered(n for n, s in FLOWS.items() if s.reconcile)

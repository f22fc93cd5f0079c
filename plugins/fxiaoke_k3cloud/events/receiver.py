"""Push receiver: signed doorbells from a K3Cloud service plug-in or a Fxiaoke workflow function.

Served by the project's Airflow plugin under ``/sync-hooks`` (in the api-server):

* ``POST /sync-hooks/k3cloud/audit`` — body ``{"form_id": "SAL_DELIVERYNOTICE", "operation": "Audit"|"UnAudit",
  "numbers": [...], "ids": [...], "event_id": "..."}``; rings the asset of the flow reading that form
  (``SAL_DELIVERYNOTICE`` → ``k3cloud_audited_delivery_notices``, ``AR_RECEIVEBILL`` → ``k3cloud_audited_receipt_bills``);
* ``POST /sync-hooks/fxiaoke/change`` — body ``{"object_api_name": "AccountObj", "data_id": "...",
  "event_id": "..."}``; rings the asset of the flow reading that CRM object (``AccountObj`` →
  ``fxiaoke_changed_accounts``, ``SalesOrderObj`` → ``fxiaoke_changed_sales_orders``, ``ContactObj`` →
  ``fxiaoke_changed_contacts``).

Which forms and objects are accepted comes from the flow registry (``flows/specs.py``): a new flow's source is
accepted with no change here.

Authentication: ``events.signing`` (HMAC-SHA256 of ``<timestamp>.<body>``, ±300 s, constant-time compare)
with the password of the Airflow connection ``sync_push_k3cloud`` / ``sync_push_fxiaoke``. No connection =
the path refuses everything (503). A bad or stale signature is 401 and records nothing; an exact replay
within the window is 200 ``{"recorded": false, "replay": true}`` and records nothing. An accepted push
records one asset event through Airflow's asset manager (the code path of ``POST /api/v2/assets/events``),
with the push's numbers/ids in the event's extra; the woken run still reads from the watermark.

Answers carry no secret and no body echo beyond the field names a caller must fix.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from fxiaoke_k3cloud.events.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureError, Verifier
from fxiaoke_k3cloud.flows.specs import event_sources

log = logging.getLogger(__name__)

K3CLOUD_CONN_ID = "sync_push_k3cloud"
FXIAOKE_CONN_ID = "sync_push_fxiaoke"
#: Asset by lower-cased source form / object, per system, from the registry (``flows.specs.event_sources``).
K3CLOUD_ASSETS = {form.lower(): asset for system, form, asset in event_sources() if system == "k3cloud"}
K3CLOUD_FORMS = [form for system, form, _ in event_sources() if system == "k3cloud"]
K3CLOUD_OPERATIONS = {"audit", "unaudit"}
FXIAOKE_ASSETS = {obj.lower(): asset for system, obj, asset in event_sources() if system == "fxiaoke"}
FXIAOKE_OBJECTS = [obj for system, obj, _ in event_sources() if system == "fxiaoke"]
MAX_BODY_BYTES = 64 * 1024
MAX_KEYS_IN_EXTRA = 50
SECRET_TTL_S = 60.0

Recorder = Callable[[str, dict[str, Any]], "int | None"]
SecretLookup = Callable[[str], "str | None"]


def airflow_secret(conn_id: str) -> str | None:
    """The password of an Airflow connection (secrets backends, env vars, metastore), or None."""
    # Airflow's ORM modules are imported on first use: this module is loaded by the plugin manager while
    # Airflow itself is still starting up in every component.
    from airflow.exceptions import AirflowNotFoundException
    from airflow.models.connection import Connection

    try:
        return Connection.get_connection_from_secrets(conn_id).password or None
    except AirflowNotFoundException:
        return None


def record_asset_event(asset_name: str, extra: dict[str, Any]) -> int | None:
    """Record one event of an asset Airflow knows (as the REST API does); its id, or None for an unknown asset."""
    from airflow.assets.manager import asset_manager
    from airflow.models.asset import AssetActive, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        model = session.scalar(
            select(AssetModel).join(AssetActive, AssetActive.name == AssetModel.name).where(AssetModel.name == asset_name).limit(1)
        )
        if model is None:
            return None
        event = asset_manager.register_asset_change(asset=model, extra=extra, source_is_api=True, session=session)
        session.flush()
        return None if event is None else int(event.id)


class _Secrets:
    """Secrets by connection id, re-read every ``SECRET_TTL_S`` (a rotated secret takes effect within a minute)."""

    def __init__(self, lookup: SecretLookup) -> None:
        self.lookup = lookup
        self._cache: dict[str, tuple[float, str | None]] = {}

    def get(self, conn_id: str) -> str | None:
        now = time.monotonic()
        cached = self._cache.get(conn_id)
        if cached is None or now - cached[0] > SECRET_TTL_S:
            cached = (now, self.lookup(conn_id))
            self._cache[conn_id] = cached
        return cached[1]


def _names(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
        raise HTTPException(422, f"field '{field}' must be a list of strings or integers")
    return [str(v) for v in value[:MAX_KEYS_IN_EXTRA]]


def create_app(*, secret_lookup: SecretLookup = airflow_secret, recorder: Recorder = record_asset_event,
               verifier: Verifier | None = None) -> FastAPI:
    """The receiver app (a factory, so each test starts with a clean replay memory)."""
    app = FastAPI(title="Fxiaoke ⇄ K3Cloud push receiver", docs_url=None, redoc_url=None, openapi_url=None)
    secrets = _Secrets(secret_lookup)
    verifier = verifier or Verifier()

    async def authentic_body(request: Request, conn_id: str) -> tuple[dict[str, Any], bool]:
        secret = secrets.get(conn_id)
        if not secret:
            raise HTTPException(503, f"push receiver not configured: create the Airflow connection '{conn_id}' "
                                     "with the shared secret as its password")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise HTTPException(413, f"body larger than {MAX_BODY_BYTES} bytes")
        try:
            fresh = verifier.verify(secret, request.headers.get(TIMESTAMP_HEADER), request.headers.get(SIGNATURE_HEADER), body)
        except SignatureError as exc:
            log.warning("push refused on %s: %s", request.url.path, exc)
            raise HTTPException(401, f"push refused: {exc}") from None
        try:
            payload = json.loads(body)
        except ValueError:
            raise HTTPException(422, "body must be a JSON object") from None
        if not isinstance(payload, dict):
            raise HTTPException(422, "body must be a JSON object")
        return payload, fresh

    def ring(asset: str, extra: dict[str, Any]) -> dict[str, Any]:
        event_id = recorder(asset, extra)
        if event_id is None:
            raise HTTPException(404, f"asset '{asset}' is not known to Airflow yet: is its DAG parsed?")
        log.info("push recorded asset event %s on %s (%s)", event_id, asset, extra.get("operation") or extra.get("object_api_name"))
        return {"recorded": True, "asset": asset, "asset_event_id": event_id}

    @app.post("/k3cloud/audit")
    async def receive_k3cloud_audit(request: Request) -> dict[str, Any]:
        payload, fresh = await authentic_body(request, K3CLOUD_CONN_ID)
        form_id = str(payload.get("form_id") or "")
        asset = K3CLOUD_ASSETS.get(form_id.lower())
        if asset is None:
            raise HTTPException(422, f"field 'form_id' must be one of {', '.join(K3CLOUD_FORMS)} (case-insensitive), got {form_id[:40]!r}")
        operation = str(payload.get("operation") or "")
        if operation.lower() not in K3CLOUD_OPERATIONS:
            raise HTTPException(422, f"field 'operation' must be Audit or UnAudit, got {operation[:40]!r}")
        extra = {"source": "push", "form_id": form_id, "operation": operation,
                 "numbers": _names(payload.get("numbers"), "numbers"), "ids": _names(payload.get("ids"), "ids"),
                 "event_id": str(payload.get("event_id") or "")[:100]}
        if not fresh:
            return {"recorded": False, "replay": True, "asset": asset}
        return await _in_thread(ring, asset, extra)

    @app.post("/fxiaoke/change")
    async def receive_fxiaoke_change(request: Request) -> dict[str, Any]:
        payload, fresh = await authentic_body(request, FXIAOKE_CONN_ID)
        name = str(payload.get("object_api_name") or "")
        asset = FXIAOKE_ASSETS.get(name.lower())
        if asset is None:
            raise HTTPException(422, f"field 'object_api_name' must be one of {', '.join(FXIAOKE_OBJECTS)}, got {name[:40]!r}")
        extra = {"source": "push", "object_api_name": name, "ids": _names([payload["data_id"]] if payload.get("data_id") else [], "data_id"),
                 "event_id": str(payload.get("event_id") or "")[:100]}
        if not fresh:
            return {"recorded": False, "replay": True, "asset": asset}
        return await _in_thread(ring, asset, extra)

    return app


async def _in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    return await run_in_threadpool(fn, *args)

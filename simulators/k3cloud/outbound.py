"""Stand-in for a customer's K3Cloud service plug-in: after an Audit or UnAudit that succeeded, POST a signed
doorbell to a configured URL, fire-and-forget (the operation's answer never waits for it, and a receiver
that is down changes nothing in K3Cloud).

Real K3Cloud has no outbound webhook; a service plug-in (``AbstractOperationServicePlugIn``, docs/events.md)
writes an outbox row inside the operation's transaction and posts it after commit. This module plays that
plug-in's part: same body, same signature (HMAC-SHA256 of ``<unix seconds>.<body>`` with the shared secret, sent
as ``X-Sync-Timestamp`` / ``X-Sync-Signature: sha256=<hex>``), posted from a background thread once the
operation has been applied.

Configured with ``$K3SIM_OUTBOUND_URL`` / ``$K3SIM_OUTBOUND_SECRET`` (``SimConfig.outbound_url`` / ``outbound_secret``)
(off when no URL). Deliveries are counted in ``Outbound.sent`` / ``Outbound.failed``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from typing import Any

import requests

OPERATIONS = {"audit": "Audit", "unaudit": "UnAudit"}


def signed_headers(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    mac = hmac.new(secret.encode("utf-8"), f"{ts}.".encode("ascii") + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Sync-Timestamp": ts, "X-Sync-Signature": f"sha256={mac}"}


class Outbound:
    def __init__(self, url: str, secret: str, *, timeout_s: float = 5.0) -> None:
        self.url = url
        self.secret = secret
        self.timeout_s = timeout_s
        self.sent = 0
        self.failed = 0

    def after(self, op: str, form_id: str, successes: list[dict[str, Any]]) -> None:
        """Called once an operation has been applied; posts in the background for Audit/UnAudit successes."""
        operation = OPERATIONS.get(op.lower())
        if not self.url or operation is None or not successes:
            return
        body = json.dumps({
            "form_id": form_id, "operation": operation, "event_id": uuid.uuid4().hex,
            "numbers": [s["Number"] for s in successes if s.get("Number")],
            "ids": [s["Id"] for s in successes if s.get("Id") is not None],
        }, ensure_ascii=False).encode("utf-8")
        threading.Thread(target=self._post, args=(body,), name="k3sim-outbound", daemon=True).start()

    def _post(self, body: bytes) -> None:
        try:
            answer = requests.post(self.url, data=body, headers=signed_headers(self.secret, body), timeout=self.timeout_s)
            ok = answer.status_code < 300
        except requests.RequestException:
            ok = False
        if ok:
            self.sent += 1
        else:
            self.failed += 1

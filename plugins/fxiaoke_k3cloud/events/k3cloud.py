"""Watcher of K3Cloud audits: rings when a delivery notice (or any bill form) is audited.

One poll is one ``ExecuteBillQuery`` of header fields only::

    FormId SAL_DELIVERYNOTICE, FieldKeys FID,FBillNo,FApproveDate,
    FilterString FDocumentStatus = 'C' AND FApproveDate >= '<now − overlap, UTC+8>',
    OrderString FApproveDate DESC, FID DESC, Limit 1

(``FApproveDate`` is UTC+8 local time on the wire; the filter helper converts the aware bound.) The newest
``(FApproveDate, FID)`` is compared with the stored position. An un-audit is not seen by polling (the notice
leaves the result); the flow's schedule, and the push receiver, cover it. A notice audited in the same
second as the newest but with a lower FID rings no second bell; the run rung for the first one, or the
schedule, reads it from the watermark.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

from fxiaoke_k3cloud.events.position import Position
from fxiaoke_k3cloud.events.watcher import PollingWatcher
from fxiaoke_k3cloud.flows.window import k3_local_ms
from fxiaoke_k3cloud.hooks.k3cloud_async import AsyncK3CloudClient, credentials_of
from fxiaoke_k3cloud.hooks.k3cloud_filter import F

FIELDS = ["FID", "FBillNo", "FApproveDate"]


approve_ms = k3_local_ms  # FApproveDate as epoch ms (flows/window.py)


class K3CloudAuditTrigger(PollingWatcher):
    """Polls the newest audited document of ``form_id`` every few seconds (see ``events.pacing``).

    :param k3cloud_conn_id: the ``k3cloud`` connection (read in the triggerer; nothing secret is in the kwargs).
    :param overlap_s: how far back the filter reaches; audits older than that never ring (the schedule has them).
    """

    def __init__(self, *, k3cloud_conn_id: str = "k3cloud_default", form_id: str = "SAL_DELIVERYNOTICE",
                 overlap_s: float = 86400.0, name: str = "k3cloud_audited_delivery_notices", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.k3cloud_conn_id = k3cloud_conn_id
        self.form_id = form_id
        self.overlap_s = float(overlap_s)
        self.client: AsyncK3CloudClient | None = None

    def extra_kwargs(self) -> dict[str, Any]:
        return {"k3cloud_conn_id": self.k3cloud_conn_id, "form_id": self.form_id, "overlap_s": self.overlap_s}

    async def open(self) -> None:
        creds, settings = await asyncio.to_thread(credentials_of, self.k3cloud_conn_id)
        self.client = AsyncK3CloudClient(creds, settings)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    async def newest(self) -> Position | None:
        assert self.client is not None
        since = datetime.now(timezone.utc) - timedelta(seconds=self.overlap_s)
        flt = (F("FDocumentStatus") == "C") & (F("FApproveDate") >= since)
        rows = await self.client.execute_bill_query(self.form_id, FIELDS, flt, order_by=["FApproveDate DESC", "FID DESC"],
                                                    limit=1)
        if not rows:
            return None
        at = approve_ms(rows[0]["FApproveDate"])
        return None if at is None else Position(at, str(rows[0]["FID"]))

    def event_payload(self, position: Position) -> dict[str, Any]:
        return {**super().event_payload(position), "form_id": self.form_id}

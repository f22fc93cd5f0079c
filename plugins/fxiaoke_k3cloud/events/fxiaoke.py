"""Watcher of CRM changes: rings when an AccountObj / SalesOrderObj record is created or changed in Fxiaoke.

One poll is one ``/cgi/crm/v2/data/query``: ``last_modified_time >= now − overlap``, ordered by
``last_modified_time`` then ``_id``, both descending, ``limit 1``, projection ``_id, last_modified_time``.
(The token call comes on top about once per 6600 s.)

Cost per watcher: one call every ``poll_s`` in business hours and every ``off_hours_poll_s`` outside. With
the defaults (20 s for 12 h Monday–Saturday, 120 s otherwise) that is 2,160 + 360 = **2,520 calls a day**
per object on a business day (1,440 on Sunday); two objects (accounts, orders) ≈ 5,000 a day, well under
the gateway's per-path limit of 100 calls per 20 s. At 15 s all day it would be 5,760 per object. Check the
tenant's daily API quota (errorCode 30003 when exhausted) before lowering the interval.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fxiaoke_k3cloud.events.position import Position
from fxiaoke_k3cloud.events.watcher import PollingWatcher
from fxiaoke_k3cloud.hooks.fxiaoke_async import AsyncFxiaokeClient, settings_of

MODIFIED = "last_modified_time"


class FxiaokeChangeTrigger(PollingWatcher):
    """Polls the newest ``last_modified_time`` of ``object_api_name``.

    :param fxiaoke_conn_id: the ``fxiaoke`` connection (read in the triggerer; nothing secret in the kwargs).
    :param overlap_s: how far back the filter reaches.
    """

    def __init__(self, *, object_api_name: str, fxiaoke_conn_id: str = "fxiaoke_default", overlap_s: float = 86400.0,
                 **kwargs: Any) -> None:
        kwargs.setdefault("pacing", {"poll_s": 20.0, "off_hours_poll_s": 120.0})
        super().__init__(**kwargs)
        self.object_api_name = object_api_name
        self.fxiaoke_conn_id = fxiaoke_conn_id
        self.overlap_s = float(overlap_s)
        self.client: AsyncFxiaokeClient | None = None

    def extra_kwargs(self) -> dict[str, Any]:
        return {"object_api_name": self.object_api_name, "fxiaoke_conn_id": self.fxiaoke_conn_id,
                "overlap_s": self.overlap_s}

    async def open(self) -> None:
        settings = await asyncio.to_thread(settings_of, self.fxiaoke_conn_id)
        self.client = AsyncFxiaokeClient(settings)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    async def newest(self) -> Position | None:
        assert self.client is not None
        since_ms = int((time.time() - self.overlap_s) * 1000)
        rows = await self.client.query_page(self.object_api_name, [(MODIFIED, "GTE", [since_ms])],
                                            [(MODIFIED, False), ("_id", False)], fields=[MODIFIED], limit=1)
        if not rows or rows[0].get(MODIFIED) in (None, ""):
            return None
        return Position(int(rows[0][MODIFIED]), str(rows[0].get("_id") or ""))

    def event_payload(self, position: Position) -> dict[str, Any]:
        return {**super().event_payload(position), "object_api_name": self.object_api_name}

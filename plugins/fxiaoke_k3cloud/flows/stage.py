"""Staging: records and packages handed from one task to the next through the audit database.

XCom carries ids and counts only; the data itself (raw CRM records, mapped packages) is staged in the
``sync_stage`` table of the audit store, which every worker of a CeleryExecutor deployment can reach.
A run's rows are deleted when its report task finishes.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Iterator

import sqlalchemy as sa

from fxiaoke_k3cloud.audit.schema import sync_stage

BATCH = 1000


class Stage:
    def __init__(self, store: Any) -> None:
        self.engine: sa.Engine = store.engine

    def put(self, run_pk: int, kind: str, rows: Iterable[dict[str, Any]], *, key: str = "_id") -> int:
        """Replace the run's staged rows of this kind (a retried task starts clean)."""
        count = 0
        with self.engine.begin() as conn:
            conn.execute(sa.delete(sync_stage).where(sync_stage.c.run == run_pk, sync_stage.c.kind == kind))
            batch: list[dict[str, Any]] = []
            for seq, row in enumerate(rows):
                batch.append({"run": run_pk, "kind": kind, "seq": seq, "source_id": str(row.get(key, "")),
                              "payload": json.dumps(row, ensure_ascii=False, separators=(",", ":"))})
                if len(batch) >= BATCH:
                    conn.execute(sa.insert(sync_stage), batch)
                    count += len(batch)
                    batch = []
            if batch:
                conn.execute(sa.insert(sync_stage), batch)
                count += len(batch)
        return count

    def get(self, run_pk: int, kind: str) -> Iterator[dict[str, Any]]:
        query = (sa.select(sync_stage.c.payload)
                 .where(sync_stage.c.run == run_pk, sync_stage.c.kind == kind).order_by(sync_stage.c.seq))
        with self.engine.connect() as conn:
            for (payload,) in conn.execute(query):
                yield json.loads(payload)

    def clear(self, run_pk: int) -> int:
        with self.engine.begin() as conn:
            return conn.execute(sa.delete(sync_stage).where(sync_stage.c.run == run_pk)).rowcount

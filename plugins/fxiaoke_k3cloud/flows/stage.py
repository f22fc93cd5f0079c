"""Staging: records and packages handed from one task to the next through the audit database.

XCom carries ids and counts only; the data itself (raw CRM records, lines, mapped packages) is staged in
the ``sync_stage`` table of the audit store, which every worker of a CeleryExecutor deployment can reach.
Steps write and read it in chunks, so a run's memory does not grow with the size of the window.
A run's rows are deleted when its report task finishes.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Sequence

from decimal import Decimal

import msgspec
import sqlalchemy as sa

from fxiaoke_k3cloud.audit.schema import sync_stage

BATCH = 1000
IN_CHUNK = 500


# msgspec's JSON codec (an Airflow dependency) is 4–5× faster than the json module on these rows; the stored text
# is the same compact UTF-8 JSON. NaN/inf, which are not JSON, are stored as null.
# Decimals (mapped quantities, prices) are stored as JSON numbers with all their digits and read back as Decimal
# (packages only: raw records keep the types the source's JSON gave them).
_encoder = msgspec.json.Encoder(decimal_format="number")
_decoder = msgspec.json.Decoder()
_decimal_decoder = msgspec.json.Decoder(float_hook=Decimal)


def _dumps(row: dict[str, Any]) -> str:
    return _encoder.encode(row).decode("utf-8")


def _loads(payload: str, kind: str = "") -> Any:
    return (_decimal_decoder if kind == "package" else _decoder).decode(payload)


class Stage:
    def __init__(self, store: Any) -> None:
        self.engine: sa.Engine = store.engine

    def clear_kind(self, run_pk: int, kind: str) -> None:
        """Forget the run's rows of this kind (a retried task starts clean)."""
        with self.engine.begin() as conn:
            conn.execute(sa.delete(sync_stage).where(sync_stage.c.run == run_pk, sync_stage.c.kind == kind))

    def put(self, run_pk: int, kind: str, rows: Iterable[dict[str, Any]], *, key: str = "_id") -> int:
        """Replace the run's staged rows of this kind."""
        self.clear_kind(run_pk, kind)
        return self.append(run_pk, kind, rows, key=key)

    def append(self, run_pk: int, kind: str, rows: Iterable[dict[str, Any]], *, key: str = "_id") -> int:
        """Add rows after the ones already staged; returns how many were added."""
        with self.engine.begin() as conn:
            last = conn.execute(sa.select(sa.func.max(sync_stage.c.seq))
                                .where(sync_stage.c.run == run_pk, sync_stage.c.kind == kind)).scalar()
            seq = -1 if last is None else int(last)
            count = 0
            batch: list[dict[str, Any]] = []
            for row in rows:
                seq += 1
                batch.append({"run": run_pk, "kind": kind, "seq": seq, "source_id": str(row.get(key, "")),
                              "payload": _dumps(row)})
                if len(batch) >= BATCH:
                    conn.execute(sa.insert(sync_stage), batch)
                    count += len(batch)
                    batch = []
            if batch:
                conn.execute(sa.insert(sync_stage), batch)
                count += len(batch)
        return count

    def chunks(self, run_pk: int, kind: str, size: int) -> Iterator[list[dict[str, Any]]]:
        """The staged rows in order, ``size`` at a time; each chunk is its own short query."""
        seq = 0
        while True:
            query = (sa.select(sync_stage.c.payload)
                     .where(sync_stage.c.run == run_pk, sync_stage.c.kind == kind,
                            sync_stage.c.seq >= seq, sync_stage.c.seq < seq + size)
                     .order_by(sync_stage.c.seq))
            with self.engine.connect() as conn:
                rows = [_loads(p, kind) for (p,) in conn.execute(query)]
            if not rows:
                last = self._max_seq(run_pk, kind)
                if last is None or seq > last:
                    return
            else:
                yield rows
            seq += size

    def _max_seq(self, run_pk: int, kind: str) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.max(sync_stage.c.seq))
                                .where(sync_stage.c.run == run_pk, sync_stage.c.kind == kind)).scalar()

    def get(self, run_pk: int, kind: str) -> Iterator[dict[str, Any]]:
        for chunk in self.chunks(run_pk, kind, BATCH):
            yield from chunk

    def by_source(self, run_pk: int, kind: str, source_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Staged rows of this kind whose key is one of ``source_ids`` (e.g. the lines of some orders)."""
        out: list[dict[str, Any]] = []
        ids = list(dict.fromkeys(str(s) for s in source_ids))
        for start in range(0, len(ids), IN_CHUNK):
            query = (sa.select(sync_stage.c.payload)
                     .where(sync_stage.c.run == run_pk, sync_stage.c.kind == kind,
                            sync_stage.c.source_id.in_(ids[start : start + IN_CHUNK]))
                     .order_by(sync_stage.c.seq))
            with self.engine.connect() as conn:
                out.extend(_loads(p, kind) for (p,) in conn.execute(query))
        return out

    def source_ids(self, run_pk: int, kind: str) -> set[str]:
        """The keys of the run's staged rows of this kind."""
        with self.engine.connect() as conn:
            return {str(sid) for (sid,) in conn.execute(
                sa.select(sync_stage.c.source_id).where(sync_stage.c.run == run_pk, sync_stage.c.kind == kind))}

    def count(self, run_pk: int, kind: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(sync_stage)
                                    .where(sync_stage.c.run == run_pk, sync_stage.c.kind == kind)).scalar_one())

    def is_empty(self, run_pk: int) -> bool:
        """Whether the run staged nothing at all (no record, line, package or change of any kind)."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sync_stage.c.seq).where(sync_stage.c.run == run_pk).limit(1)).first() is None

    def clear(self, run_pk: int) -> int:
        with self.engine.begin() as conn:
            return conn.execute(sa.delete(sync_stage).where(sync_stage.c.run == run_pk)).rowcount

"""The rest of a big window, read by the load while it writes (issue 19: extract overlapped with load).

A first sync or a big import brings a CRM → K3Cloud flow more rows than the Fxiaoke gateway serves in one 20 s
window (100 query calls per endpoint, ``hooks/fxiaoke_throttle.py``). Read in full by the extract task, the run
sleeps on the throttle while nothing is written, and the load starts only after it. Instead:

1. the extract reads the first :data:`HAND_OFF_ROWS` rows of the window (``max_rows``: no call beyond them),
   stages them, and stages the window and its ``_id`` cursor as one row of kind ``cursor`` (:func:`hand_off`);
   the retries by id, the presence check and the short-circuit decision stay in the extract;
2. the transform task maps what the extract staged;
3. the load writes those packages while a reader thread (:func:`.paging.prefetched`) reads the window on after
   the cursor; every :data:`STREAM_CHUNK` new records are mapped in the load's own thread
   (:func:`.transform.map_records`) and handed to the same writers (:class:`Remainder`), so the reading, the
   throttle's waits, the mapping and up to N K3Cloud writes overlap.

Calls are the same as a full read in the extract (the continued query starts with the cursor and asks for its
total, so a full last page costs no empty call), except that a window of exactly ``HAND_OFF_ROWS`` rows costs one
empty page in the load.

Retries: after each chunk is mapped its packages, then its raw records, then the moved cursor are staged, in
that order. A load retried after a failure writes every staged package again (the id map makes the written
ones unchanged: no call) and reads on from the last staged cursor, so nothing read is lost; at most one chunk is
read and mapped twice (its second packages are unchanged no-ops). A finished remainder deletes the cursor.

Which flows stream (:func:`hand_off_rows`): the generic extract (no ``extract`` hook in the flow's module), no
``sync_dependencies`` step (records read by the load would miss their dependencies), no entry rows (lines come
from a stream of their own), a window run (not ``ids``), on a connection whose voided rows come in the same query
(``voided_query: folded``, the default). Every other run reads its whole window in the extract, as before.
"""

from __future__ import annotations

import logging
from typing import Any, Iterator, Mapping

from fxiaoke_k3cloud.flows.echoes import Echoes
from fxiaoke_k3cloud.flows.mappings import flow_mapping
from fxiaoke_k3cloud.flows.paging import Prefetched, chunks, new_records
from fxiaoke_k3cloud.flows.specs import FlowSpec, flow_hook
from fxiaoke_k3cloud.flows.stage import Stage
from fxiaoke_k3cloud.flows.window import Window

log = logging.getLogger(__name__)

HAND_OFF_ROWS = 2000  # window rows the extract reads itself (20 query pages); the load reads the rest
STREAM_CHUNK = 500  # records read by the load that are mapped and handed to the writers at a time
PREFETCH_PAGES = 20  # pages the load's reader thread may be ahead of the mapping
CURSOR_KIND = "cursor"


def hand_off_rows(spec: FlowSpec, hook: Any, params: Mapping[str, Any]) -> int | None:
    """Rows of the window the extract reads before it hands the rest to the load; None: it reads all."""
    if params.get("ids") or flow_hook(spec, "extract") is not None or "sync_dependencies" in spec.steps:
        return None
    if spec.direction != "crm_to_k3" or flow_mapping(spec).entries is not None:
        return None
    if getattr(hook.settings, "voided_query", "folded") != "folded":
        return None
    return HAND_OFF_ROWS


class WindowRead:
    """The pages of the flow's window query (optionally after a cursor, at most ``max_rows``); remembers the
    rows read and the last ``_id`` (pages come in ``_id`` order)."""

    def __init__(self, hook: Any, spec: FlowSpec, window: Window, *, max_rows: int | None = None,
                 after_id: str | None = None) -> None:
        self.hook, self.spec, self.window = hook, spec, window
        self.max_rows, self.after_id = max_rows, after_id
        self.rows = 0
        self.last_id = after_id

    def pages(self) -> Iterator[list[dict[str, Any]]]:
        for page in self.hook.query_window(self.spec.source_object, self.spec.modified_field, self.window.start_ms,
                                           self.window.end_ms, after_id=self.after_id, max_rows=self.max_rows):
            self.rows += len(page)
            if page:
                self.last_id = str(page[-1]["_id"])
            yield page

    @property
    def stopped_early(self) -> bool:
        """The read stopped at ``max_rows``: the window may hold more after :attr:`last_id`."""
        return self.max_rows is not None and self.rows >= self.max_rows and self.last_id is not None


def hand_off(stage: Stage, run_pk: int, window: Window, after_id: str | None, rows: int) -> None:
    """Stage the window and its cursor: the load reads on after ``after_id``."""
    stage.put(run_pk, CURSOR_KIND, [{"_id": "window", "window": window.as_xcom(), "after_id": after_id,
                                     "rows": rows}])
    log.info("window has more than %s rows: the load reads the rest after _id %s while it writes", rows, after_id)


def staged_cursor(stage: Stage, run_pk: int) -> dict[str, Any] | None:
    rows = list(stage.get(run_pk, CURSOR_KIND))
    return rows[-1] if rows else None


class Remainder:
    """The window's records after the staged cursor, read by a reader thread from :meth:`open` on (while the
    load writes what the extract staged) and mapped in the caller's thread as :meth:`packages` is iterated."""

    def __init__(self, spec: FlowSpec, store: Any, run_pk: int, cursor: dict[str, Any]) -> None:
        from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook

        self.spec, self.store, self.run_pk, self.cursor = spec, store, run_pk, cursor
        self.stage = Stage(store)
        self.window = Window.from_xcom(cursor["window"])
        self.counts: dict[str, int] = {"streamed": 0}
        self.seen = self.stage.source_ids(run_pk, "raw")  # retries by id, an earlier attempt's chunks: not twice
        self.echoes = Echoes.for_window(spec, store, self.window)
        self.read = WindowRead(FxiaokeHook(), spec, self.window, after_id=cursor["after_id"])
        self._hooks: list[Any] = []
        log.info("%s: reading the window on after _id %s (%s rows read by the extract) while loading",
                 spec.name, cursor["after_id"], cursor.get("rows"))
        self._feed = Prefetched(self.read.pages(), depth=PREFETCH_PAGES)

    @classmethod
    def open(cls, spec: FlowSpec, store: Any, run_pk: int) -> "Remainder | None":
        """The run's remainder, its reader started; None when the extract read the whole window."""
        cursor = staged_cursor(Stage(store), run_pk)
        return None if cursor is None else cls(spec, store, run_pk, cursor)

    def packages(self, piece: int) -> Iterator[list[dict[str, Any]]]:
        """Package rows, ``piece`` at a time, of every :data:`STREAM_CHUNK` records as they arrive."""
        buffer: list[dict[str, Any]] = []
        through = self.cursor["after_id"]
        for page in self._feed:
            buffer += new_records(self.echoes.drop(page), self.seen)
            through = str(page[-1]["_id"]) if page else through
            if len(buffer) >= STREAM_CHUNK:
                yield from chunks(self._mapped(buffer, through), piece)
                buffer = []
        if buffer:
            yield from chunks(self._mapped(buffer, through), piece)
        self.echoes.log(self.spec)
        self.stage.clear_kind(self.run_pk, CURSOR_KIND)
        log.info("%s: %s more record(s) read and mapped by the load (%s rows after the cursor)", self.spec.name,
                 self.counts["streamed"], self.read.rows)

    def _mapped(self, records: list[dict[str, Any]], through_id: str) -> list[dict[str, Any]]:
        from fxiaoke_k3cloud.flows.transform import map_records  # here: transform imports the load's neighbours

        got, rows = map_records(self.spec, self.store, self.run_pk, records, [], self._hooks)
        for key, n in got.items():
            self.counts[key] = self.counts.get(key, 0) + n
        self.counts["streamed"] += len(records)
        self.stage.append(self.run_pk, "raw", records)  # after the packages: a retry re-reads, never skips, them
        # The pages consumed so far (the reader thread may be ahead): a retry reads on after the last of them.
        self.stage.put(self.run_pk, CURSOR_KIND, [{**self.cursor, "after_id": through_id}])
        return rows

    def close(self) -> None:
        """Stop the reader (waits for its call in flight) and log out the lookups' K3Cloud session."""
        self._feed.close()
        for hook in self._hooks:
            hook.close()

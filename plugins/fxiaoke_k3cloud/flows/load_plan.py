"""Load, step 1 — plan: the records, where they go, and the id-map decisions (database only, no API call).

The pipeline of the load step (``load.py`` drives it):

1. **plan** (this module, the task's main thread): the id map decides create, update, renumber, unchanged or
   verify; numbers compare as K3Cloud compares them and collisions are rejected here, before anything is sent;
2. **write** (``load_write.py`` with the reads of ``load_read.py``, a worker thread per chunk, up to N chunks
   in flight): presence checks, renumbers, creates, updates against K3Cloud, one outcome per record;
3. **persist** (``load_persist.py``, the main thread): the id map, then the outcomes, then claims released.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from fxiaoke_k3cloud.audit import IdMapEntry, RecordOutcome
from fxiaoke_k3cloud.errors import is_config_error
from fxiaoke_k3cloud.flows.specs import FlowSpec
from fxiaoke_k3cloud.numbers import number_key

DUPLICATE_MARKERS = ("已经被使用", "already been used", "唯一")
PRESENCE_PAGE = 2000  # ids per presence-check ExecuteBillQuery (one page: K3Cloud's page limit)


@dataclass
class Package:
    source_id: str
    number: str
    model: dict[str, Any]
    update_model: dict[str, Any]
    update_fields: list[str]
    payload_hash: str
    source_name: str | None = None
    modified_ms: int | None = None

    @classmethod
    def from_stage(cls, row: dict[str, Any]) -> "Package":
        return cls(**{k: row.get(k) for k in cls.__dataclass_fields__})


@dataclass
class Target:
    """Where a package is going: a new document, or an existing one (id + number)."""

    id: str | None = None
    number: str | None = None


@dataclass
class LoadResult:
    outcomes: list[Any] = field(default_factory=list)  # audit RecordOutcome rows
    id_map: list[Any] = field(default_factory=list)  # audit IdMapEntry rows
    counts: Counter = field(default_factory=Counter)


@dataclass
class LoadPlan:
    """What :meth:`Loader.execute` has to send: new documents, and existing ones whose payload changed."""

    creates: list[Package] = field(default_factory=list)
    updates: list[tuple[Package, Target]] = field(default_factory=list)
    renumbers: list[tuple[Package, Target]] = field(default_factory=list)  # updates whose number changed
    verify: list[tuple[Package, Target]] = field(default_factory=list)  # unchanged per id map; presence checked
    owners: dict[str, Any] = field(default_factory=dict)  # number key → id map entry holding it (plan time)


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def is_duplicate_number(row: Any, number_key: str) -> bool:
    return any(
        (err.field_name or "").lower() in (number_key.lower(), "fbillno", "fnumber")
        and any(m in err.message for m in DUPLICATE_MARKERS)
        for err in row.errors
    )


def as_pk(value: str | None) -> int | str:
    try:
        return int(value)  # K3Cloud ids are ints on the wire
    except (TypeError, ValueError):
        return value or 0


class LoadPlanner:
    """Plans one chunk of one flow's packages and keeps their outcomes (``result``); the caller persists them.

    :meth:`plan` reads the store (the id map) only; the write side (:class:`~.load_write.Loader`) only talks to
    K3Cloud, so a plan can be made in the main thread while other chunks' calls are in flight.
    """

    def __init__(self, spec: FlowSpec, hook: Any, store: Any, run_pk: int, options: dict[str, Any], *,
                 pk_key: str, number_key: str, unaudit_before_update: bool, verify_presence: bool = False,
                 on_target_missing: str = "recreate", on_renumber: str = "renumber",
                 claimed: dict[str, tuple[str, str]] | None = None, org_filter: tuple[str, str] | None = None,
                 reference_fields: Sequence[str] = ()) -> None:
        """:param verify_presence: check in K3Cloud that documents the id map calls unchanged still exist.
        :param claimed: number key → (source id, raw number) of the records this run already planned; shared
            by the loaders of one run so a collision across chunks is found too.
        :param org_filter: (field key, org number) of the org the flow writes to (see
            :func:`.base_data.org_filter`): base data allocated to several orgs is a row per use org, and a
            lookup by number must take this org's row.
        :param reference_fields: header reference keys to read back after a save that K3Cloud did not verify
            (no ``IsVerifyBaseDataField``): a reference it left empty makes the record ``reported``.
        """
        self.spec = spec
        self.hook = hook
        self.store = store
        self.run_pk = run_pk
        self.options = options
        self.pk_key = pk_key
        self.number_key = number_key
        self.unaudit_before_update = unaudit_before_update
        self.verify_presence = verify_presence
        self.on_target_missing = on_target_missing
        self.on_renumber = on_renumber
        self.claimed = {} if claimed is None else claimed
        self.org_filter = org_filter
        self.reference_fields = list(reference_fields)
        self.result = LoadResult()
        self._owners: dict[str, Any] = {}
        self._created_reason: dict[str, str] = {}  # source id → why a create happens (a vanished document)
        self._unaudited: set[str] = set()  # ids un-audited by this chunk's presence check (load_read)

    # ---- bookkeeping ------------------------------------------------------------------------------
    def _outcome(self, pkg: Package, outcome: str, *, target: Target | None = None, reason: str | None = None,
                 attempt: int = 1, error: BaseException | str | None = None, request: Any = None,
                 response: Any = None) -> None:
        if is_config_error(error):  # set-up (login, permission, form), not data: fail the step once, no retries
            raise error  # type: ignore[misc]
        self.result.counts[outcome] += 1
        self.result.outcomes.append(RecordOutcome(
            flow=self.spec.name, entity=self.spec.entity, source_id=pkg.source_id, source_name=pkg.source_name,
            outcome=outcome, reason=reason, target_id=target.id if target else None,
            target_number=target.number if target else pkg.number, payload_hash=pkg.payload_hash,
            attempt=attempt, error_class=error, request=request, response=response,
        ))

    def _link(self, pkg: Package, target: Target, *, synced: bool) -> None:
        self.result.id_map.append(IdMapEntry(
            source_id=pkg.source_id, target_id=target.id, target_number=target.number,
            payload_hash=pkg.payload_hash if synced else None, source_modified_ms=pkg.modified_ms, run=self.run_pk,
        ))


    def plan(self, packages: list[Package]) -> LoadPlan:
        """Database only: the id map decides create, update, renumber or unchanged (recorded here, no API call).

        Numbers are compared by :func:`number_key` with those of the records this run planned before and with
        the id map: a number another CRM record holds rejects this record (both named); the id map links by
        K3Cloud id, so a linked record whose number changed is a renumber, not a new document.
        """
        known = self.store.get_id_map(self.spec.entity, [p.source_id for p in packages])
        owners = self.store.get_id_map_by_number_keys(self.spec.entity, [p.number for p in packages])
        plan = LoadPlan(owners=owners)
        self._owners = owners
        # Records of this batch that move away from a number they hold: that number is free once they ran.
        leaving = {sid: number_key(e.target_number) for sid, e in known.items()}
        new_keys = {p.source_id: number_key(p.number) for p in packages}
        for pkg in packages:
            key = new_keys[pkg.source_id]
            entry = known.get(pkg.source_id)
            first = self.claimed.get(key)
            if first is not None and first[0] != pkg.source_id:
                self._collision(pkg, first[0], first[1], "planned earlier in this run")
                continue
            owner = owners.get(key)
            if owner is not None and owner.source_id != pkg.source_id:
                freed = (self.on_renumber == "renumber" and owner.source_id in new_keys
                         and new_keys[owner.source_id] != leaving.get(owner.source_id))
                if not freed:
                    self._collision(pkg, owner.source_id, owner.target_number,
                                    f"linked to K3Cloud {self.spec.target_form} id {owner.target_id}")
                    continue
            self.claimed[key] = (pkg.source_id, pkg.number)
            if entry is None:
                plan.creates.append(pkg)
                continue
            target = Target(entry.target_id, entry.target_number)
            if number_key(entry.target_number) != key:
                if self.on_renumber == "report":
                    self._outcome(pkg, "reported", target=target, error="Renumbered",
                                  reason=f"the CRM changed the number of {self._label(pkg)} from "
                                         f"{entry.target_number!r} to {pkg.number!r}; K3Cloud "
                                         f"{self.spec.target_form} id {entry.target_id} keeps {entry.target_number!r} "
                                         "(on_renumber: report) — change the number in K3Cloud too, or set it "
                                         "back in the CRM, or set target.on_renumber: renumber")
                    continue
                plan.renumbers.append((pkg, target))
            elif entry.payload_hash != pkg.payload_hash:
                plan.updates.append((pkg, target))
            elif self.verify_presence:
                plan.verify.append((pkg, target))
            else:
                self._outcome(pkg, "unchanged", target=target, reason="mapped payload unchanged since the last sync")
        return plan

    def _label(self, pkg: Package) -> str:
        return f"CRM record {pkg.source_id}" + (f" ({pkg.source_name})" if pkg.source_name else "")

    def _collision(self, pkg: Package, other_id: str, other_number: Any, where: str) -> None:
        self._outcome(pkg, "rejected", error="NumberCollision",
                      reason=f"number collision: {self._label(pkg)} has number {pkg.number!r}, which K3Cloud takes "
                             f"for {other_number!r} of CRM record {other_id} ({where}); K3Cloud compares numbers "
                             "without regard to case, full/half width and surrounding blanks. Not written, and "
                             f"CRM record {other_id}'s document is not touched — give one of the two another "
                             "number in the CRM")

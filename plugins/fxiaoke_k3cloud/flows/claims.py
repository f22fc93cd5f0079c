"""A run's write claims on the records it loads (the store side is :mod:`fxiaoke_k3cloud.audit.claims`)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from typing import Any

from fxiaoke_k3cloud.audit import RecordOutcome
from fxiaoke_k3cloud.audit.claims import holder_name
from fxiaoke_k3cloud.flows.load_plan import LoadResult

log = logging.getLogger(__name__)


def claim_wait_seconds() -> float:
    """How long a run waits for records another run is writing (``SYNC_CLAIM_WAIT_SECONDS``, default 600)."""
    return float(os.environ.get("SYNC_CLAIM_WAIT_SECONDS", "600"))


class Claims:
    """The claims one run holds on one entity's records; release what you took, ``release_all`` at the end."""

    def __init__(self, store: Any, entity: str, run_pk: int) -> None:
        self.store = store
        self.entity = entity
        self.run_pk = run_pk
        self.holder = holder_name(run_pk)
        self.held: set[str] = set()

    def take(self, ids: Iterable[str]) -> tuple[list[str], dict[str, str]]:
        """Claim what is free now; returns (claimed, {id: other holder}) without waiting."""
        mine, others = self.store.claim(self.entity, ids, holder=self.holder, run=self.run_pk)
        self.held.update(mine)
        return mine, others

    def wait(self, ids: Sequence[str]) -> tuple[list[str], dict[str, str]]:
        """Claim ``ids``, waiting for other runs to release them (call holding no other claim)."""
        mine, others = self.store.claim_waiting(self.entity, ids, holder=self.holder, run=self.run_pk,
                                                timeout=claim_wait_seconds())
        self.held.update(mine)
        return mine, others

    def release(self, ids: Iterable[str]) -> None:
        ids = [i for i in ids if i in self.held]
        if ids:
            self.store.release_claims(self.entity, ids, holder=self.holder)
            self.held.difference_update(ids)

    def renew(self) -> None:
        """Renew the lease of every claim this run holds on the entity (called with the run's heartbeat)."""
        if self.held:
            self.store.renew_claims(self.entity, holder=self.holder, run=self.run_pk)

    def release_all(self) -> None:
        try:
            self.release(list(self.held))
        except Exception:  # noqa: BLE001 - never mask the load's own error; the lease frees them anyway
            log.exception("could not release %s claim(s) of run %s; they expire with their lease",
                          len(self.held), self.run_pk)

    def still_held(self, spec: Any, packages: Sequence[Any], held: dict[str, str]) -> Any:
        """Outcomes for packages whose claim another run still holds after the wait: failed, retried later."""
        result = LoadResult()
        for pkg in packages:
            result.counts["failed"] += 1
            result.outcomes.append(RecordOutcome(
                flow=spec.name, entity=spec.entity, source_id=pkg.source_id, source_name=pkg.source_name,
                outcome="failed", target_number=pkg.number, error_class="ClaimedByAnotherRun",
                reason=f"{pkg.source_name or pkg.source_id}: being written by {held[pkg.source_id]} for longer "
                       f"than {claim_wait_seconds():.0f} s; not written twice, retried by the next run"))
        return result

"""The load of every K3Cloud → CRM flow: claims per document, one outcome per document, config errors fail the step.

A flow's loader subclasses :class:`ClaimedLoader` and writes one batch of documents in ``_load_batch`` (the
documents this run holds the claims of); ``run`` does the rest the same way for every flow:

* every document is claimed in ``sync_claim`` before it is written, so two runs at once (a backfill beside the
  schedule, two Celery workers) take turns per document and the second finds what the first wrote; a document
  another run still holds after the wait is failed and retried by the next run;
* a configuration error (login refused, permission, unknown object: :class:`~fxiaoke_k3cloud.errors.ConfigError`)
  is the same for every document: it fails the step at once, never one "failed" outcome per document
  (the outcomes recorded until then are kept);
* the outcomes are recorded together at the end of the run (also when it fails).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Sequence

from fxiaoke_k3cloud.audit import RecordOutcome
from fxiaoke_k3cloud.errors import is_config_error
from fxiaoke_k3cloud.flows.claims import Claims
from fxiaoke_k3cloud.flows.specs import FlowSpec

log = logging.getLogger(__name__)


class ClaimedLoader:
    """Writes one run's packages (objects with ``source_id``, ``number`` and ``payload_hash``) to the CRM."""

    def __init__(self, spec: FlowSpec, hook: Any, store: Any, run_pk: int) -> None:
        self.spec = spec
        self.hook = hook
        self.store = store
        self.run_pk = run_pk
        self.outcomes: list[RecordOutcome] = []
        self.counts: Counter = Counter()

    # ---- what a flow's loader implements -----------------------------------------------------------
    def _load_batch(self, packages: Sequence[Any], *, dry_run: bool = False) -> None:
        raise NotImplementedError

    # ---- the same for every flow ---------------------------------------------------------------------
    def run(self, packages: Sequence[Any], *, dry_run: bool = False) -> Counter:
        """Load the packages; each is claimed first, so two runs at once never write one document twice.

        A document another run is writing is loaded after that run released it, from the id map as it left it
        (so it is found, not created again); one still held after the wait is failed and retried later.
        """
        try:
            if dry_run:
                self._load_batch(packages, dry_run=True)
            else:
                self._claimed(packages)
        finally:
            self.store.record_outcomes(self.run_pk, self.outcomes)
        return self.counts

    def _claimed(self, packages: Sequence[Any]) -> None:
        claims = Claims(self.store, self.spec.entity, self.run_pk)
        try:
            mine, held = claims.take([p.source_id for p in packages])
            self._load_batch([p for p in packages if p.source_id in set(mine)])
            claims.release(mine)
            if held:
                log.info("%s: %s document(s) are being written by another run; waiting for it", self.spec.name,
                         len(held))
                mine, held = claims.wait(list(held))
                self._load_batch([p for p in packages if p.source_id in set(mine)])
                claims.release(mine)
            for pkg in (p for p in packages if p.source_id in held):
                self._outcome(pkg, "failed", error="ClaimedByAnotherRun",
                              reason=f"{pkg.number}: being written by {held[pkg.source_id]} for too long; "
                                     "not written twice, retried by the next run")
        finally:
            claims.release_all()

    def _outcome(self, pkg: Any, outcome: str, *, target_id: str | None = None, reason: str | None = None,
                 attempt: int = 1, error: Any = None, request: Any = None) -> None:
        if is_config_error(error):  # set-up (login, permission, object), not data: fail the step once, no retries
            raise error
        self.counts[outcome] += 1
        self.outcomes.append(RecordOutcome(
            flow=self.spec.name, entity=self.spec.entity, source_id=pkg.source_id, source_name=pkg.number,
            outcome=outcome, reason=reason, target_id=target_id, target_number=pkg.number,
            payload_hash=pkg.payload_hash, attempt=attempt, error_class=error, request=request))

    @staticmethod
    def raise_config_error(exc: BaseException) -> None:
        """Re-raise ``exc`` when it is a configuration error (call it in an ``except`` that handles data errors)."""
        if is_config_error(exc):
            raise exc

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
from typing import Any, Callable, Sequence

from fxiaoke_k3cloud.audit import RecordOutcome
from fxiaoke_k3cloud.errors import ApiError, OutcomeUnknownError, TransportError, is_config_error
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

    def create_once(self, pkg: Any, api: str, data: dict[str, Any], details: dict[str, list[dict[str, Any]]],
                    find_by_name: Callable[[Any, list[str]], dict[str, str]], what: str) -> tuple[str, str | None] | None:
        """Create the CRM record named ``pkg.number``; after a lost answer read it back by name, never re-send.

        Returns ``(id, note)``, or None when the document got its outcome here (refused, or not found yet).
        The CRM's search index can lag a write by seconds, so "not found right after a timeout" does not prove
        the create failed: the document is failed and the next run reads back by name again before creating.
        """
        try:
            return self.hook.create_record(api, data, details=details), None
        except OutcomeUnknownError as exc:
            log.warning("%s: create of %s %s got no answer (%s); reading back by name", self.spec.name, what,
                        pkg.number, exc)
            found = find_by_name(self.hook, [pkg.number]).get(pkg.number)
            if found:
                return found, "create timed out; found in the CRM by name on read-back"
            self._outcome(pkg, "failed", error=exc,
                          reason=f"{pkg.number}: create outcome unknown (no answer) and not found by name yet; "
                                 "the next run reads back by name again before creating")
        except (ApiError, TransportError) as exc:
            self._outcome(pkg, "failed", error=exc, request=data, reason=f"{pkg.number}: CRM refused the {what}: {exc}")
        return None

    @staticmethod
    def raise_config_error(exc: BaseException) -> None:
        """Re-raise ``exc`` when it is a configuration error (call it in an ``except`` that handles data errors)."""
        if is_config_error(exc):
            raise exc

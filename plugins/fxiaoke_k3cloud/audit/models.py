"""The values the audit store takes and returns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fxiaoke_k3cloud.errors import SyncError


class IdMapConflictError(SyncError):
    """Two source records claim the same target number (``id_map`` is unique on entity + target_number).

    Usually a duplicate in the CRM (two accounts that became one K3Cloud customer) or a number reused in
    K3Cloud: a person must decide which source record owns the number.
    """


@dataclass(frozen=True, kw_only=True, slots=True)
class RecordOutcome:
    """What happened to one source record in one run (one row of ``sync_record``).

    :param outcome: one of created, updated, unchanged, rejected, failed, parked, released, reported, skipped.
    :param error_class: the exception's class name (an exception or class is accepted and named for you).
    :param request: the request sent (any JSON-like object); stored redacted and truncated.
    :param response: the answer received; stored redacted and truncated.
    """

    flow: str
    entity: str
    source_id: str
    outcome: str
    source_name: str | None = None
    reason: str | None = None
    target_id: str | None = None
    target_number: str | None = None
    payload_hash: str | None = None
    attempt: int = 1
    error_class: str | type[BaseException] | BaseException | None = None
    request: Any = None
    response: Any = None


@dataclass(frozen=True, kw_only=True, slots=True)
class IdMapEntry:
    """One CRM ⇄ ERP identity (a row of ``id_map``); ``synced_at`` defaults to now when written."""

    source_id: str
    target_id: str | None = None
    target_number: str | None = None
    payload_hash: str | None = None
    source_modified_ms: int | None = None
    synced_at: datetime | None = None
    run: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class ParkedItem:
    """A record waiting for a dependency (a row of ``parked``)."""

    entity: str
    source_id: str
    flow: str
    reason: str | None
    missing: str | None
    first_parked_at: datetime
    last_tried_at: datetime
    attempts: int
    released_at: datetime | None
    status: str

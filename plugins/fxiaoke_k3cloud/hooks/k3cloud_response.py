"""Classify K3Cloud answers and turn them into typed results (spec §1.5, §3.2, §4.4, §6).

Pure functions over already-decoded bodies, so every shape can be tested on literal bodies:

- ``{"Result": {"ResponseStatus": {...}, ...}}`` — Save/BatchSave/Submit/Audit/Delete/View/Push/operations;
- ``[[{"Result": {"ResponseStatus": ...}}]]`` — an ExecuteBillQuery failure (success is a bare list of rows);
- ``[{"FieldName": null, "Message": "...", "DIndex": 0}]`` — a bare error list some servers send for a lost session;
- ``[{"actionname": "showConfirm", ...}]`` — the cloud WAF refusing the request.

``MsgCode`` decides the exception (``raise_for_status``); a BatchSave with some failed packages is *data*
(``batch_outcomes``), not an exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, NamedTuple

from fxiaoke_k3cloud.errors import (
    ApiError,
    AuthenticationError,
    BusinessRuleError,
    PermanentApiError,
    PermissionDeniedError,
    RateLimitedError,
    RetryableApiError,
    SessionExpiredError,
    UnknownFormError,
)

SYSTEM = "k3cloud"
# A form id the data center does not have: 业务对象“X”不存在。 (with FieldName FormId).
UNKNOWN_FORM = re.compile(r"业务对象“[^”]*”不存在")

MSG_SESSION_LOST = 1
MSG_NO_PERMISSION = 2
MSG_LICENSE = 7
MSG_FIELD_NOT_FOUND = 9
MSG_DATA_NOT_FOUND = 10
MSG_VALIDATION = 11
MSG_NOT_ALLOWED = 12
MSG_LOCK_CONFLICT = 13
MSG_CALL_LIMIT = 14
MSG_ADMIN_FORBIDDEN = 15

# Session-loss texts in zh-CN, zh-TW and en-US (MsgCode is preferred; some builds answer with text only).
SESSION_LOST_TEXTS = (
    "会话信息已丢失", "会话已过期", "请重新登录",
    "會話信息已丟失", "會話資訊已遺失", "會話已過期", "請重新登錄", "請重新登入",
    "session information has been lost", "session information is lost", "session has expired", "please log in again",
)

# 网控 (network-control) lock conflicts: real servers answer MsgCode 0 (or no MsgCode) with this text, rarely the
# documented 13; full- and half-width punctuation both occur. zh-CN, zh-TW, en-US.
LOCK_CONFLICT_TEXTS = (
    "冲突，请稍候再使用", "冲突,请稍候再使用", "冲突，请稍后再使用", "衝突，請稍候再使用", "衝突,請稍候再使用",
    "conflict, please try again later", "conflict,please try again later",
)

_RECORD_MSG_CODES = {0, MSG_FIELD_NOT_FOUND, MSG_DATA_NOT_FOUND, MSG_VALIDATION, MSG_NOT_ALLOWED}


class FieldError(NamedTuple):
    """One error the server reported for a record: the field it names (may be None) and the message."""

    field_name: str | None
    message: str


@dataclass(frozen=True)
class SuccessEntity:
    """One document a call succeeded on (``SuccessEntitys[]``)."""

    id: int | None
    number: str | None
    dindex: int


@dataclass(frozen=True)
class BatchRowOutcome:
    """What happened to input row ``index`` of a BatchSave (mapped by ``DIndex``)."""

    index: int
    ok: bool
    id: int | None = None
    number: str | None = None
    errors: list[FieldError] = field(default_factory=list)
    msg_code: int = 0


@dataclass(frozen=True)
class SaveResult:
    """The saved document's id and number, and ``NeedReturnData`` (one dict per package)."""

    id: int | None
    number: str | None
    need_return_data: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class OperationResult:
    """Submit/Audit/UnAudit/Delete/ExcuteOperation outcome: the documents processed and the server's messages.

    ``errors`` lists what the server refused while still succeeding for the rest (e.g. one of several numbers
    does not exist); a call where nothing succeeded raises instead.
    """

    successes: list[SuccessEntity]
    messages: list[str]
    errors: list[FieldError] = field(default_factory=list)


@dataclass(frozen=True)
class PushResult:
    """Push outcome: the target documents saved, and the conversion's own successes."""

    targets: list[SuccessEntity]
    converted: list[SuccessEntity]
    messages: list[str]


def is_true(value: Any) -> bool:
    """``IsSuccess`` may be a bool or a string (doc templates show ``"false"``)."""
    return value is True or str(value).strip().lower() == "true"


def response_status(body: Any) -> Mapping[str, Any] | None:
    """The ``ResponseStatus`` object carried by ``body`` in any known shape, or None (e.g. query rows)."""
    if isinstance(body, Mapping):
        result = body.get("Result")
        if isinstance(result, Mapping) and isinstance(result.get("ResponseStatus"), Mapping):
            return result["ResponseStatus"]
        if isinstance(body.get("ResponseStatus"), Mapping):
            return body["ResponseStatus"]
        return None
    if isinstance(body, list) and body:
        first = body[0]
        if isinstance(first, list) and first and isinstance(first[0], Mapping) and "Result" in first[0]:
            return response_status(first[0])  # ExecuteBillQuery failure, wrapped twice
        if isinstance(first, Mapping) and "Result" in first and response_status(first) is not None:
            return response_status(first)  # BillQuery failure (shape unconfirmed; accept it once-wrapped)
        if isinstance(first, Mapping) and set(first) >= {"Message", "DIndex"} and not any(k.startswith("F") for k in first if k != "FieldName"):
            messages = [str(e.get("Message") or "") for e in body if isinstance(e, Mapping)]
            code = (MSG_SESSION_LOST if any(is_session_lost_text(m) for m in messages)
                    else MSG_LOCK_CONFLICT if messages and all(is_lock_conflict_text(m) for m in messages) else 4)
            return {"IsSuccess": False, "Errors": list(body), "MsgCode": code}
    return None


def is_session_lost_text(message: str) -> bool:
    lowered = message.lower()
    return any(text in lowered for text in SESSION_LOST_TEXTS)


def is_lock_conflict_text(message: str) -> bool:
    lowered = message.lower()
    return any(text in lowered for text in LOCK_CONFLICT_TEXTS)


def is_lock_conflict(status: Mapping[str, Any]) -> bool:
    """A failed status that is a 网控 lock conflict: MsgCode 13, or every error carries the conflict text."""
    if is_true(status.get("IsSuccess")):
        return False
    errors = errors_of(status)
    return msg_code(status) == MSG_LOCK_CONFLICT or (bool(errors) and all(is_lock_conflict_text(e.message) for e in errors))


def errors_of(status: Mapping[str, Any]) -> list[FieldError]:
    return [
        FieldError(e.get("FieldName") or None, str(e.get("Message") or ""))
        for e in status.get("Errors") or []
        if isinstance(e, Mapping)
    ]


def msg_code(status: Mapping[str, Any]) -> int:
    try:
        return int(status.get("MsgCode") or 0)
    except (TypeError, ValueError):
        return 0


def is_session_lost(status: Mapping[str, Any]) -> bool:
    if is_true(status.get("IsSuccess")):
        return False
    return msg_code(status) == MSG_SESSION_LOST or any(is_session_lost_text(e.message) for e in errors_of(status))


def waf_block_message(body: Any) -> str | None:
    """The message of a cloud WAF refusal (``[{"actionname": "showConfirm", ...}]``), else None."""
    if isinstance(body, list) and body and isinstance(body[0], Mapping) and "actionname" in body[0]:
        params = body[0].get("params") or [{}]
        first = params[0] if isinstance(params, list) and params and isinstance(params[0], Mapping) else {}
        return str(first.get("msg") or body[0].get("actionname"))
    return None


def api_error_for(status: Mapping[str, Any], endpoint: str) -> ApiError:
    """The typed exception for a failed ``ResponseStatus`` (MsgCode first, session-loss text as fallback)."""
    code = msg_code(status)
    errors = errors_of(status)
    text = "; ".join(f"{e.field_name}: {e.message}" if e.field_name else e.message for e in errors) or "no message"
    kwargs: dict[str, Any] = {"system": SYSTEM, "endpoint": endpoint, "code": code, "details": errors}
    if is_session_lost(status):
        return SessionExpiredError(f"session lost: {text}", **{**kwargs, "code": MSG_SESSION_LOST})
    if is_lock_conflict(status):  # by text too: MsgCode 0 or absent on real servers; retried like 13
        return RetryableApiError(f"network-control lock conflict: {text}", **{**kwargs, "code": MSG_LOCK_CONFLICT})
    if code == MSG_NO_PERMISSION:
        return PermissionDeniedError(f"{text} (grant the integration user this right in K3Cloud)", **kwargs)
    if code == MSG_CALL_LIMIT:
        return RateLimitedError(f"call limit reached: {text}", **kwargs)
    if code == MSG_ADMIN_FORBIDDEN:
        return AuthenticationError(f"{text} (administrator login is forbidden; use an integration user)", **kwargs)
    if any((e.field_name or "").lower() == "formid" for e in errors) or UNKNOWN_FORM.search(text):
        return UnknownFormError(f"{text} (no such form: check the form id in the mapping, e.g. BD_Customer, and "
                                "that the module is licensed in this data center)", **kwargs)
    if code == MSG_LICENSE:
        return PermanentApiError(f"license error: {text} (check the K3Cloud license / user count)", **kwargs)
    if code in _RECORD_MSG_CODES:
        return BusinessRuleError(text, **kwargs)
    return PermanentApiError(text, **kwargs)


def raise_for_status(status: Mapping[str, Any] | None, endpoint: str) -> None:
    """Raise the typed error for a failed status; do nothing for success or a body without one."""
    if status is not None and not is_true(status.get("IsSuccess")):
        raise api_error_for(status, endpoint)


def is_record_level_failure(status: Mapping[str, Any]) -> bool:
    """True when a failed BatchSave status describes per-package errors rather than a whole-call failure.

    Any status listing successes is per-package, whatever its MsgCode: retrying the whole batch after a partial
    lock conflict (13) would save the packages that already landed a second time.
    """
    if is_session_lost(status):
        return False
    if is_lock_conflict(status):
        return True  # the caller re-sends the locked packages (BatchSave), whatever else the call did
    return msg_code(status) in _RECORD_MSG_CODES or bool(success_entities(status))


def success_entities(status: Mapping[str, Any]) -> list[SuccessEntity]:
    out = []
    for item in status.get("SuccessEntitys") or []:
        if not isinstance(item, Mapping):
            continue
        raw_id = item.get("Id")
        out.append(
            SuccessEntity(
                id=int(raw_id) if str(raw_id).lstrip("-").isdigit() else None,
                number=(item.get("Number") or item.get("BillNo")) or None,
                dindex=int(item.get("DIndex") or 0),
            )
        )
    return out


def success_messages(status: Mapping[str, Any]) -> list[str]:
    return [str(m.get("Message") or "") for m in status.get("SuccessMessages") or [] if isinstance(m, Mapping)]


def batch_outcomes(status: Mapping[str, Any], count: int) -> list[BatchRowOutcome]:
    """One outcome per input package: successes and errors mapped back by ``DIndex``.

    An error whose DIndex is missing or out of range cannot be pinned to one row; it is attached to every row
    that did not succeed, so no failed row is left without a reason.
    """
    code = msg_code(status)
    ok_by_index = {e.dindex: e for e in success_entities(status) if 0 <= e.dindex < count}
    if not ok_by_index and is_lock_conflict(status):
        # The whole call met a lock (one error, DIndex 0, or one per package): nothing was saved, all may go again.
        return [BatchRowOutcome(index=i, ok=False, errors=errors_of(status), msg_code=MSG_LOCK_CONFLICT)
                for i in range(count)]
    errors_by_index: dict[int, list[FieldError]] = {}
    unplaced: list[FieldError] = []
    for raw in status.get("Errors") or []:
        if not isinstance(raw, Mapping):
            continue
        err = FieldError(raw.get("FieldName") or None, str(raw.get("Message") or ""))
        index = raw.get("DIndex")
        if isinstance(index, int) and 0 <= index < count:
            errors_by_index.setdefault(index, []).append(err)
        else:
            unplaced.append(err)
    outcomes = []
    for index in range(count):
        if index in ok_by_index and index not in errors_by_index:
            entity = ok_by_index[index]
            outcomes.append(BatchRowOutcome(index=index, ok=True, id=entity.id, number=entity.number))
            continue
        if index not in errors_by_index and is_true(status.get("IsSuccess")):
            # The server says everything saved but listed no entity for this row: it saved, id unknown.
            outcomes.append(BatchRowOutcome(index=index, ok=True))
            continue
        errors = errors_by_index.get(index) or unplaced or [FieldError(None, "not saved; the server gave no reason")]
        row_code = MSG_LOCK_CONFLICT if all(is_lock_conflict_text(e.message) for e in errors) else code
        outcomes.append(BatchRowOutcome(index=index, ok=False, errors=list(errors), msg_code=row_code))
    return outcomes

"""Fxiaoke wire answers → the package's typed exceptions (pure functions, no I/O).

The gateway answers API errors as HTTP 200 with ``errorCode != 0`` (spec §6.1); only the code is
meaningful, never the message text (§1). So the mapping below branches on ``errorCode`` alone, with
one exception: 10013 means both "missing corpAccessToken" and "offset out of range 10000" (§6.2).

::

    parse_response(resp)          HTTP layer: redirect / non-JSON / 5xx → TransportError
    error_from_body(body)         errorCode → ApiError subclass with an actionable message
"""

from __future__ import annotations

import re
from typing import Any

import requests

from fxiaoke_k3cloud.errors import (
    ApiError,
    AuthenticationError,
    BusinessRuleError,
    OutcomeUnknownError,
    PermanentApiError,
    PermissionDeniedError,
    QuotaExhaustedError,
    RateLimitedError,
    RetryableApiError,
    SessionExpiredError,
    TransportError,
    UnknownFormError,
)
from fxiaoke_k3cloud.hooks._http import truncate

SYSTEM = "fxiaoke"

TOKEN_INVALID = 20016  # corpAccessToken unknown/expired: refresh once, retry once (§2.2)
RATE_LIMIT_CODES = frozenset({30004, 14001})  # per-path frequency limit (§6.3)
TRANSIENT_CODES = frozenset({-1, -2, 50009})  # system busy / system error / service timeout

# Which credential a person must check, per code (§2.1, §6.2).
CREDENTIAL_HINTS: dict[int, str] = {
    10006: "the app secret (connection password) is missing or wrong",
    10012: "the permanent code (extra 'permanent_code') is missing",
    20006: "the app id (connection login) or app secret (connection password) is wrong",
    20015: "the permanent code (extra 'permanent_code') is wrong",
    11001: "the app id (connection login) is illegal",
    11002: "the app secret (connection password) is illegal",
    11013: "the permanent code (extra 'permanent_code') is illegal",
    11014: "the corpAccessToken is illegal (clear the token cache; check host, app id and permanent code belong together)",
    11015: "the corpId is illegal (host, app id and permanent code must belong to one tenant)",
    20012: "the acting employee (extra 'open_user_id' or 'mobile') does not exist in this tenant",
}
# 33002 with "对象[X]不存在" is an object api name the tenant does not have (a record id gives "数据[X]不存在").
UNKNOWN_OBJECT = re.compile(r"^对象\[[^\]]*\]不存在")
# 11016 (toUser) and 11017 (msgType) are illegal *request* parameters, not credentials.
NON_CREDENTIAL_11XXX = frozenset({11016, 11017, 11018})

PERMISSION_HINTS: dict[int, str] = {
    20020: "the app has no permission for this tenant's data — an admin must authorise the self-built app for "
    "this enterprise (app management → developer mode), and host/app id/permanent code must be of the same tenant",
    20021: "the app is disabled in this tenant — an admin must re-enable it in app management",
    20022: "the tenant has not authorised this app — an admin must authorise it in app management",
    20023: "the app has no permission for this department — widen the app's visible range in app management",
    20014: "the app has no permission for this employee's data — widen the app's visible range",
    15003: "the app has no access permission for this interface — enable it for the app in developer mode",
}

QUOTA_HINTS: dict[int, str] = {
    30003: "no API quota purchased — buy an OpenAPI resource pack (Open API [100000 次]) for this tenant",
    30002: "daily quota used up (resets 00:00 Asia/Shanghai) — wait for the reset or buy another OpenAPI "
    "resource pack; give backfills a call_budget so they cannot burn the quota",
}


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def error_from_body(body: dict[str, Any], *, path: str, host: str, write: bool = False) -> ApiError:
    """The exception for a non-zero ``errorCode`` envelope.

    :param write: the call changes data; unknown codes then mean the record was refused (validation,
        duplicate, state) and become :class:`BusinessRuleError`-like permanent errors.
    """
    raw_code = body.get("errorCode")
    code = _as_int(raw_code)
    message = str(body.get("errorMessage") or "")
    description = str(body.get("errorDescription") or "")
    trace_id = body.get("traceId")
    text = message if not description or description == message else f"{message} ({description})"
    details = {"errorMessage": message, "errorDescription": description, "path": path, "host": host}

    def make(cls: type[ApiError], hint: str | None = None) -> ApiError:
        full = f"{text} — {hint}" if hint else text
        return cls(full, system=SYSTEM, endpoint=path, code=raw_code, trace_id=trace_id, details=details)

    if code is None:
        return make(ApiError, "the answer carries no numeric errorCode")
    if code in RATE_LIMIT_CODES:
        return make(RateLimitedError, "per-endpoint limit of 100 calls / 20 s hit; backing off")
    if code in TRANSIENT_CODES:
        return make(RetryableApiError, "transient server error; retry later")
    if code == TOKEN_INVALID:
        return make(SessionExpiredError, "the corpAccessToken was refused even after one fresh token")
    if code in QUOTA_HINTS:
        return make(QuotaExhaustedError, QUOTA_HINTS[code])
    if code in PERMISSION_HINTS:
        return make(PermissionDeniedError, PERMISSION_HINTS[code])
    if UNKNOWN_OBJECT.match(message):
        return make(UnknownFormError, "no such object in this tenant: check the object api name in the mapping "
                                      "(custom objects end in __c) and that the app may see it")
    if code in CREDENTIAL_HINTS:
        return make(AuthenticationError, f"check the connection: {CREDENTIAL_HINTS[code]}")
    if 11001 <= code <= 11099 and code not in NON_CREDENTIAL_11XXX:
        return make(AuthenticationError, "check the connection's app id, app secret and permanent code")
    if code == 10013 and "offset" in f"{message} {description}".lower():
        return make(
            PermanentApiError,
            "paging bug: offset paging is capped at 10000 — page with the _id cursor (query_records without "
            "orders) or split the window",
        )
    if code == 20017 or code == 10013:
        return make(PermanentApiError, "no corpAccessToken/corpId was sent — a client bug, report it")
    if code in NON_CREDENTIAL_11XXX or 10001 <= code <= 10099 or code in (12003, 12004, 12005, 15002, 32000):
        return make(PermanentApiError, "the request is malformed; fix the call (see errorDescription)")
    if write:
        return make(BusinessRuleError, "the CRM refused the record; fix the data (see errorDescription)")
    return make(ApiError)


def parse_response(resp: requests.Response, *, host: str, path: str) -> dict[str, Any]:
    """The JSON envelope of an answer, or a :class:`TransportError` naming the host.

    A 3xx means the host is not the OpenAPI gateway (``www.fxiaoke.com`` answers 302 + HTML, §1).
    """
    status = resp.status_code
    if 300 <= status < 400:
        location = resp.headers.get("Location", "?")
        raise TransportError(
            f"{host} answered HTTP {status} (redirect to {location}) on {path}: this is not the Fxiaoke OpenAPI "
            "gateway — set the connection host to https://open.fxiaoke.com (or open-<cloud> for other clouds)",
            system=SYSTEM,
            endpoint=path,
            status=status,
        )
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "errorCode" in body:
        return body
    kind = "an HTML page" if "html" in resp.headers.get("Content-Type", "").lower() else "a body that is not a JSON envelope"
    raise TransportError(
        f"{host} answered HTTP {status} with {kind} on {path}: {truncate(resp.text, 300)!r}"
        + (" — server error, retry later" if status >= 500 else " — check that the host is the OpenAPI gateway"),
        system=SYSTEM,
        endpoint=path,
        status=status,
    )


def is_transient_transport(exc: BaseException) -> bool:
    """A transport failure worth retrying on a read: network errors, timeouts, 5xx and 429."""
    if not isinstance(exc, TransportError) or isinstance(exc, OutcomeUnknownError):
        return False
    if isinstance(exc.__cause__, requests.exceptions.SSLError):
        return False  # a certificate problem does not heal by retrying
    return exc.status is None or exc.status >= 500 or exc.status == 429


def is_retryable(exc: BaseException) -> bool:
    """What the hook's own short retry loop may replay (reads and idempotent writes).

    :class:`SessionExpiredError` is retryable for Airflow's task retries, never for this loop: it already
    survived the one bounded token refresh, and looping on it is the A3 client's bug (§7).
    """
    if isinstance(exc, SessionExpiredError):
        return False
    if isinstance(exc, RetryableApiError):
        return True
    return is_transient_transport(exc)


def refused_without_effect(exc: BaseException) -> bool:
    """The request certainly did nothing (rate-limited, or never reached the server): even a create may be replayed.

    The hook raises a plain :class:`TransportError` without status for a write only when the connection was
    never made; a write that may have arrived becomes :class:`OutcomeUnknownError` instead.
    """
    if isinstance(exc, RateLimitedError):
        return True
    return type(exc) is TransportError and exc.status is None and not isinstance(exc.__cause__, requests.exceptions.SSLError)

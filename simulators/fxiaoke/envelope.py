"""Response envelope, traceIds and the error codes the simulator answers with.

Every API outcome is HTTP 200 with ``errorCode``/``errorMessage``/``errorDescription``/``traceId`` (spec §1).
Codes the spec leaves unknown (§10) are the simulator's own choice and are listed in README.md.
"""

from __future__ import annotations

import secrets
from typing import Any

OK = 0
SYSTEM_BUSY = -1
PARAM_MISSING_SECRET = 10006
OFFSET_OUT_OF_RANGE = 10013
MISSING_TO_USER = 10015
ILLEGAL_TO_USER = 11016
ILLEGAL_MSG_TYPE = 11017
CALL_LIMIT = 14001
EMPTY_BODY = 12004
EMPTY_TEXT = 12005
APP_ID_WRONG = 20006
OPEN_USER_NOT_FOUND = 20012
PERMANENT_CODE_WRONG = 20015
TOKEN_INVALID = 20016
TOKEN_MISSING = 20017
APP_UNAUTHORISED = 20020
APP_DISABLED = 20021
QUOTA_EXCEEDED = 30002
NO_QUOTA = 30003
RATE_LIMITED = 30004
DEPARTMENT_NOT_FOUND = 30007
EMPLOYEE_NOT_FOUND = 30027
PARAM_ERROR = 32000
# Simulator-chosen codes for CRM business errors whose real codes are unknown (spec §10).
VALIDATION_FAILED = 33001
NOT_FOUND = 33002
STATE_CONFLICT = 33003

TOKEN_INVALID_MSG = "the cropId,cropAccessToken or authorization is error"


class ApiError(Exception):
    """Raised by handlers; rendered as an HTTP 200 envelope with a non-zero errorCode."""

    def __init__(self, code: int, message: str, description: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.description = description if description is not None else message


def param_error(message: str) -> ApiError:
    return ApiError(PARAM_ERROR, message, "参数错误: " + message)


def trace_id(ea: str | None, user: str | int | None) -> str:
    """``E-O.<ea>.<user>-<16 hex>``; unauthenticated calls use ``E-O.null.-1000-…`` as the gateway does."""
    if ea is None:
        return f"E-O.null.-1000-{secrets.token_hex(8)}"
    return f"E-O.{ea}.{user}-{secrets.token_hex(8)}"


def gateway_trace_id() -> str:
    return f"open-api-gateway-web/{secrets.token_hex(8)}"


def success(trace: str, **fields: Any) -> dict[str, Any]:
    return {"errorCode": OK, "errorMessage": "OK", "errorDescription": "success", "traceId": trace, **fields}


def failure(trace: str, code: int, message: str, description: str | None = None) -> dict[str, Any]:
    return {
        "errorCode": code,
        "errorMessage": message,
        "errorDescription": description if description is not None else message,
        "traceId": trace,
    }

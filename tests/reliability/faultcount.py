"""Client-side fault counting: every HTTP exchange the hooks make is classified by what the simulator answered.

The simulators count calls (``/_sim/stats``) but not which of them were faulted, so the chaos suite wraps
``requests``' transport adapter (test instrumentation only; production code is unchanged) and counts the faults
the clients actually met: HTTP 5xx, read timeouts, K3Cloud MsgCodes 1/13/14 and Fxiaoke errorCodes
20016/30002/30003/30004.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from contextlib import contextmanager
from typing import Any, Iterator

import requests
from requests.adapters import HTTPAdapter

K3_CODES = {1: "k3_session_lost", 13: "k3_lock_conflict", 14: "k3_rate_limited"}
FX_CODES = {20016: "fx_token_expired", 30002: "fx_quota_exhausted", 30003: "fx_no_quota", 30004: "fx_rate_limited",
            -1: "fx_busy"}


def classify(response: requests.Response) -> str | None:
    """The fault a response carries, or None for a normal answer (business errors are not faults)."""
    if response.status_code >= 500:
        return f"http_{response.status_code}"
    if "_sim/" in response.url:
        return None
    try:
        body: Any = json.loads(response.content or b"null")
    except ValueError:
        return None
    if isinstance(body, dict) and "errorCode" in body:
        return FX_CODES.get(body.get("errorCode"))
    status = _k3_status(body)
    if status and not status.get("IsSuccess", True):
        codes = {e.get("MsgCode") if isinstance(e, dict) else None for e in [status]}
        code = status.get("MsgCode")
        if any("冲突，请稍候再使用" in str(e.get("Message")) for e in status.get("Errors") or [] if isinstance(e, dict)):
            return K3_CODES[13]  # real servers answer 网控 conflicts with MsgCode 0 or none (simulators/k3cloud/README.md)
        if code is None:
            errors = status.get("Errors") or []
            codes = {e.get("MsgCode") for e in errors if isinstance(e, dict)}
            code = next((c for c in codes if c in K3_CODES), None)
        return K3_CODES.get(code)
    return None


def _k3_status(body: Any) -> dict[str, Any] | None:
    if isinstance(body, dict):
        result = body.get("Result")
        if isinstance(result, dict):
            status = result.get("ResponseStatus")
            if isinstance(status, dict):
                return status
    if isinstance(body, list) and body and isinstance(body[0], list) and body[0] and isinstance(body[0][0], dict):
        inner = body[0][0].get("Result")
        if isinstance(inner, dict) and isinstance(inner.get("ResponseStatus"), dict):
            return inner["ResponseStatus"]
    return None


class FaultCounter:
    """Counts exchanges and faults seen by every ``requests`` adapter in this process while active."""

    def __init__(self) -> None:
        self.faults: Counter[str] = Counter()
        self.calls = 0
        self._lock = threading.Lock()

    def add(self, kind: str | None) -> None:
        with self._lock:
            self.calls += 1
            if kind:
                self.faults[kind] += 1

    @contextmanager
    def active(self) -> Iterator["FaultCounter"]:
        original = HTTPAdapter.send
        counter = self

        def send(adapter: HTTPAdapter, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
            if "/_sim/" in (request.url or ""):
                return original(adapter, request, **kwargs)
            try:
                response = original(adapter, request, **kwargs)
            except requests.exceptions.Timeout:
                counter.add("timeout")
                raise
            except requests.exceptions.ConnectionError:
                counter.add("connection_error")
                raise
            counter.add(classify(response))
            return response

        HTTPAdapter.send = send  # type: ignore[method-assign]
        try:
            yield self
        finally:
            HTTPAdapter.send = original  # type: ignore[method-assign]

    @property
    def total(self) -> int:
        return sum(self.faults.values())

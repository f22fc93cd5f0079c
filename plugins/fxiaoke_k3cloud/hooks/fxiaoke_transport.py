"""One Fxiaoke HTTP exchange: budget, throttle, count, POST with timeouts, and the mapping of the answer.

Whether a failed request may have been applied decides what the caller may do next, so this is where a
lost answer to a write becomes :class:`OutcomeUnknownError` and a connection that was never made stays a
plain :class:`TransportError` (safe to replay, even for a create).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import Any, Mapping

import msgspec
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

from fxiaoke_k3cloud.errors import OutcomeUnknownError, QuotaExhaustedError, RetryableApiError, SessionExpiredError, TransportError
from fxiaoke_k3cloud.hooks._http import new_session
from fxiaoke_k3cloud.hooks.fxiaoke_config import FxiaokeSettings
from fxiaoke_k3cloud.hooks.fxiaoke_errors import SYSTEM, error_from_body, parse_response, refused_without_effect
from fxiaoke_k3cloud.hooks.fxiaoke_throttle import CallCounter, Throttle

#: A throttle wait this long or longer is logged (shorter ones are the shared throttle's own bookkeeping).
HELD_LOG_S = 0.5


def never_sent(exc: requests.RequestException) -> bool:
    """True when the request certainly did not reach the server (connect timeout / connection refused)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError)


class FxiaokeTransport:
    """Sends one POST and returns the success envelope, or raises the typed exception for the failure.

    Thread-safe: ``requests.Session`` is not guaranteed to be, so the thread that built the transport uses
    ``session`` and every other thread (a cursor query's page readers) one of its own, made on first use.
    """

    def __init__(
        self,
        settings: FxiaokeSettings,
        session: requests.Session,
        throttle: Throttle,
        counter: CallCounter,
        budget: int | None,
        log: logging.Logger,
    ) -> None:
        self.settings = settings
        self.session = session
        self._owner = threading.get_ident()
        self._local = threading.local()
        self.throttle = throttle
        self.counter = counter
        self.budget = budget
        self.log = log

    def send(self, path: str, body: Mapping[str, Any], *, idempotent: bool, write: bool = False) -> dict[str, Any]:
        """POST ``body`` to ``path``.

        :param idempotent: replaying gives the same result (reads, updates); otherwise a lost answer or a
            busy/5xx answer raises :class:`OutcomeUnknownError`.
        :param write: the call changes data; unknown error codes then mean the record was refused.
        """
        if not self.counter.add(path, budget=self.budget):
            raise self._budget_used_up(path)
        waited = self.throttle.acquire(path)
        if waited >= HELD_LOG_S:  # the shared throttle's own round trip (ms) is no hold worth a log line
            self.log.info("Client throttle held %s for %.2f s (%s calls / 20 s)", path, waited, self.throttle.limit)
        host = self.settings.host
        third_trace = uuid.uuid4().hex  # correlates our log line with the gateway's (§1: thirdTraceId)
        started = time.monotonic()
        try:
            resp = self._session().post(
                self.settings.base_url + path,
                params={"thirdTraceId": third_trace},
                **_body(body),
                timeout=self.settings.http.timeout,
                allow_redirects=False,  # a 302 means a wrong host; following it would hide that
            )
        except requests.RequestException as exc:
            raise self._transport_error(exc, path, idempotent=idempotent) from exc
        elapsed_ms = (time.monotonic() - started) * 1000
        try:
            envelope = parse_response(resp, host=host, path=path)
        except TransportError as exc:
            # A write answered with a 5xx or with an unreadable 200 (truncated, HTML): it may have been applied.
            # A 3xx never reached the API.
            if not idempotent and not 300 <= resp.status_code < 400:
                raise OutcomeUnknownError(
                    f"{exc} — the write may have been applied; read it back before sending it again",
                    system=SYSTEM,
                    endpoint=path,
                    status=resp.status_code,
                ) from exc
            raise
        code = envelope.get("errorCode")
        trace_id = envelope.get("traceId")
        self.log.debug("POST %s errorCode=%s traceId=%s thirdTraceId=%s %.0f ms", path, code, trace_id, third_trace, elapsed_ms)
        if code in (0, "0"):
            return envelope
        error = error_from_body(envelope, path=path, host=host, write=write)
        self.log.warning("Fxiaoke %s answered errorCode=%s traceId=%s (%.0f ms)", path, code, trace_id, elapsed_ms)
        busy_write = not idempotent and isinstance(error, RetryableApiError) and not refused_without_effect(error)
        if busy_write and not isinstance(error, SessionExpiredError):  # 20016 did nothing: replayed once upstream
            raise OutcomeUnknownError(
                f"{error} — busy/timeout answer to a write: it may have been applied; read it back first",
                system=SYSTEM,
                endpoint=path,
            ) from error
        raise error

    def _session(self) -> requests.Session:
        if threading.get_ident() == self._owner:
            return self.session
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = new_session(self.settings.http, system=SYSTEM, warn=False)
        return session

    def _budget_used_up(self, path: str) -> QuotaExhaustedError:
        return QuotaExhaustedError(
            f"call budget of {self.budget} API calls for this hook is used up ({self.counter.as_dict()['by_path']}) — "
            "raise call_budget (connection extra or hook argument) or split the backfill into smaller windows",
            system=SYSTEM,
            endpoint=path,
            code="call_budget",
        )

    def _transport_error(self, exc: requests.RequestException, path: str, *, idempotent: bool) -> TransportError:
        host = self.settings.host
        if isinstance(exc, requests.exceptions.SSLError):  # nothing was sent: no write can have happened
            return TransportError(
                f"TLS error talking to {host}: {exc}. If the server uses a private or self-signed CA, give its "
                "certificate in the connection extra ca_bundle rather than switching verification off",
                system=SYSTEM, endpoint=path,
            )
        if not idempotent and not never_sent(exc):
            return OutcomeUnknownError(
                f"no answer from {host} to {path} ({type(exc).__name__}) — the write may have been applied; "
                "read it back (e.g. by business key) before sending it again",
                system=SYSTEM,
                endpoint=path,
            )
        kind = "timed out" if isinstance(exc, requests.Timeout) else "failed"
        return TransportError(f"request to {host}{path} {kind}: {type(exc).__name__}", system=SYSTEM, endpoint=path)


_DECIMAL_ENCODER = msgspec.json.Encoder(decimal_format="number")


def _body(body: Any) -> dict[str, Any]:
    """``requests`` keyword for the JSON body; a Decimal (a mapped quantity) goes out as a number with all its digits."""
    try:
        json.dumps(body)
    except TypeError:
        return {"data": _DECIMAL_ENCODER.encode(body), "headers": {"Content-Type": "application/json; charset=utf-8"}}
    return {"json": body}

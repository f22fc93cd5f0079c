"""Every error this package raises, in one tree.

::

    SyncError                          base of everything below
    ├── ConfigError                    a connection or setting is wrong (names the key and the fix); also an
    │   │                              AirflowFailException: the task fails at once, without retries
    │   └── MappingError               a mapping file is invalid (names the file, the key, what is allowed)
    ├── TransportError                 no usable answer: connection refused, TLS, timeout, non-JSON body
    │   └── OutcomeUnknownError        a *write* got no answer: it may or may not have been applied;
    │                                  never replay blindly, read back first
    └── ApiError                       the API answered with an error (system, endpoint, code, message, trace id)
        ├── RetryableApiError          worth retrying with backoff (rate limit, 5xx, lock conflict, busy)
        │   ├── RateLimitedError       Fxiaoke 30004/14001, K3Cloud MsgCode 14
        │   └── SessionExpiredError    token 20016 / MsgCode 1 that survived the one bounded refresh
        └── PermanentApiError          retrying cannot help; the message says what a person must do
            ├── AuthenticationError    bad credentials, login refused                  ┐ also ConfigError:
            ├── PermissionDeniedError  app/user lacks a right (Fxiaoke 20020…, K3Cloud MsgCode 2) │ set-up, not
            ├── UnknownFormError       K3Cloud has no such form / Fxiaoke no such object ┘ data
            ├── QuotaExhaustedError    Fxiaoke 30002 (daily quota used up) / 30003 (no quota purchased), and
            │                          the hook's own call budget (code "call_budget")
            └── BusinessRuleError      the record was refused (validation, duplicate, state); data, not code

    fxiaoke_k3cloud.audit.IdMapConflictError (a SyncError): two source records claim one target number.

Configuration errors versus data errors: a :class:`ConfigError` (the API ones included) is the same for every
record, so a flow never turns it into one "failed" outcome per record — the step that met it fails once with the
message saying what to fix (``is_config_error``), and no Airflow retry repeats it. Everything else about one
record is data: that record's outcome, and the flow goes on.

Per-record rejections inside a batch are *data* (``fxiaoke_k3cloud.audit.RecordOutcome`` rows), not exceptions.
Permanent errors fail an Airflow task without retries; retryable ones let Airflow's task retries cover
outages longer than the hook's own short retry loop.
"""

from __future__ import annotations

from typing import Any

try:
    from airflow.sdk.exceptions import AirflowFailException as _FailWithoutRetry
except ImportError:  # pragma: no cover - outside Airflow (the simulators' tests never import this package)
    _FailWithoutRetry = Exception  # type: ignore[assignment,misc]


class SyncError(Exception):
    """Base class for every error raised by this package."""


class ConfigError(SyncError, _FailWithoutRetry):
    """A connection field, parameter, permission or mapping is wrong: a person must fix it; retrying cannot help.

    An ``AirflowFailException``, so the task that meets it fails at once, without its retries.
    """


class MappingError(ConfigError):
    """A mapping file is invalid; the message names the file, the key and what is allowed."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None) -> None:
        self.file = file
        self.key = key
        where = ": ".join(p for p in (file, key) if p)
        super().__init__(f"{where}: {message}" if where else message)


class TransportError(SyncError):
    """The request got no usable answer (network, TLS, timeout, HTTP status, body not JSON)."""

    def __init__(self, message: str, *, system: str = "", endpoint: str = "", status: int | None = None) -> None:
        self.system = system
        self.endpoint = endpoint
        self.status = status
        super().__init__(message)


class OutcomeUnknownError(TransportError):
    """A write was sent but no answer came back: it may have been applied. Read back before retrying."""


class ApiError(SyncError):
    """The remote API answered with an error."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        system: str,
        endpoint: str = "",
        code: Any = None,
        trace_id: str | None = None,
        details: Any = None,
    ) -> None:
        self.system = system
        self.endpoint = endpoint
        self.code = code
        self.api_message = message
        self.trace_id = trace_id
        self.details = details
        parts = [f"{system} {endpoint}".strip(), f"code={code}" if code is not None else "", message]
        if trace_id:
            parts.append(f"traceId={trace_id}")
        super().__init__(" | ".join(p for p in parts if p))


class RetryableApiError(ApiError):
    """A transient API error: retry with backoff."""

    retryable = True


class RateLimitedError(RetryableApiError):
    """The API throttled us; back off."""


class SessionExpiredError(RetryableApiError):
    """The session/token stayed invalid after the one bounded refresh."""


class PermanentApiError(ApiError):
    """Retrying cannot help; a person must act."""


class AuthenticationError(PermanentApiError, ConfigError):
    """Credentials were refused (a configuration error: the same for every record)."""


class PermissionDeniedError(PermanentApiError, ConfigError):
    """The app or user lacks a permission (a configuration error)."""


class UnknownFormError(PermanentApiError, ConfigError):
    """The target system has no such form / object (a typo in a mapping, or a module not licensed)."""


class QuotaExhaustedError(PermanentApiError):
    """The paid API quota is used up or was never purchased."""


class BusinessRuleError(PermanentApiError):
    """The API refused the request on business grounds (validation, duplicate number, document state)."""


def is_config_error(exc: BaseException | str | None) -> bool:
    """Whether an error is a set-up problem (fails the step once) rather than a record's data problem."""
    return isinstance(exc, ConfigError)


def what_to_fix(exc: BaseException, *, system: str, conn_id: str) -> str:
    """One line for a connection test: what failed and what a person checks next."""
    if isinstance(exc, (AuthenticationError, PermissionDeniedError, UnknownFormError)):
        return f"{type(exc).__name__}: {exc}"
    if isinstance(exc, ConfigError):
        return f"{type(exc).__name__}: {exc} — edit connection {conn_id!r}"
    if isinstance(exc, TransportError):
        return (f"TransportError: {exc} — {system} did not answer: check the host of connection {conn_id!r} "
                "(scheme and path), the network/proxy between Airflow and it, and TLS (extra ca_bundle)")
    if isinstance(exc, QuotaExhaustedError):
        return f"QuotaExhaustedError: {exc}"
    if isinstance(exc, ApiError):
        return f"{type(exc).__name__}: {exc} — {system} answered with an error; see the code and message"
    return f"{type(exc).__name__}: {exc}"

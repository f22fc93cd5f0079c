"""HTTP plumbing shared by both hooks: timeouts, TLS settings and secret masking."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping

import requests

from fxiaoke_k3cloud.errors import ConfigError

log = logging.getLogger(__name__)

MAX_IN_FLIGHT_LIMIT = 32  # requests in flight a connection extra may ask for (either system)
CONNECT_TIMEOUT_S = 10.0
DEFAULT_READ_TIMEOUT_S = 60.0


def _as_bool(value: Any, *, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "1", "yes", "on"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"false", "0", "no", "off"}:
        return False
    raise ConfigError(f"connection extra '{key}' must be true or false, got {value!r}")


def max_in_flight_extra(extra: Any, *, system: str, conn_id: str, default: int, what: str) -> int:
    """The connection extra ``max_in_flight``: a whole number 1–32 (``default`` when absent); else a ConfigError.

    :param what: what the number counts, for the error message (e.g. "K3Cloud requests a load sends at once").
    """
    raw = extra.get("max_in_flight") if hasattr(extra, "get") else None
    if raw in (None, ""):
        return default
    try:
        value = int(raw) if not isinstance(raw, bool) and float(raw) == int(float(raw)) else None
    except (TypeError, ValueError, OverflowError):
        value = None
    if value is None or not 1 <= value <= MAX_IN_FLIGHT_LIMIT:
        raise ConfigError(f"{system} connection {conn_id!r}: extra 'max_in_flight' must be a whole number from 1 "
                          f"to {MAX_IN_FLIGHT_LIMIT} ({what}), got {raw!r}")
    return value


@dataclass(frozen=True)
class HttpSettings:
    """Per-connection transport settings taken from the connection's extras."""

    read_timeout: float = DEFAULT_READ_TIMEOUT_S
    connect_timeout: float = CONNECT_TIMEOUT_S
    verify: bool | str = True  # True, or a path to a CA bundle; False only by explicit choice

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> "HttpSettings":
        timeout = extra.get("timeout")
        try:
            read_timeout = float(timeout) if timeout not in (None, "") else DEFAULT_READ_TIMEOUT_S
        except (TypeError, ValueError):
            raise ConfigError(f"connection extra 'timeout' must be a number of seconds, got {timeout!r}") from None
        if read_timeout <= 0:
            raise ConfigError("connection extra 'timeout' must be > 0")
        verify: bool | str = True
        if extra.get("verify_ssl") not in (None, ""):
            verify = _as_bool(extra["verify_ssl"], key="verify_ssl")
        if extra.get("ca_bundle"):
            verify = str(extra["ca_bundle"]) if verify is not False else False
        return cls(read_timeout=read_timeout, verify=verify)


class _PinnedVerifySession(requests.Session):
    """A session whose configured CA bundle (or explicit ``False``) wins over REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE.

    requests lets those environment variables override ``Session.verify``; only a per-request ``verify``
    beats them. Proxies and the rest of the environment still apply.
    """

    pinned_verify: bool | str | None = None

    def request(self, method, url, **kwargs):  # type: ignore[override]
        if self.pinned_verify is not None and kwargs.get("verify") is None:
            kwargs["verify"] = self.pinned_verify
        return super().request(method, url, **kwargs)


def new_session(settings: HttpSettings, *, system: str, warn: bool = True) -> requests.Session:
    """A ``requests.Session`` with TLS verification as configured (warns loudly when it is off).

    :param warn: ``False`` for a hook's further sessions (one per reader thread): its first one has warned.
    """
    session = _PinnedVerifySession()
    session.verify = settings.verify
    if settings.verify is not True:
        session.pinned_verify = settings.verify
    if settings.verify is False and warn:
        log.warning(
            "TLS certificate verification is OFF for the %s connection (verify_ssl=false). "
            "Credentials travel unprotected against a man in the middle; give a CA bundle instead.",
            system,
        )
    return session


def mask_secrets(*values: Any) -> None:
    """Register values with Airflow's log masker (names like permanent_code are not masked by default)."""
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - outside Airflow
        return
    for value in values:
        if value:
            mask_secret(str(value))


def truncate(text: str, limit: int = 500) -> str:
    """Cut a response body for error messages and logs."""
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} chars)"

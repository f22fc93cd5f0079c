"""The Fxiaoke connection read into a validated settings object (field names fixed in ``fxiaoke_k3cloud``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit

from fxiaoke_k3cloud.errors import ConfigError
from fxiaoke_k3cloud.hooks._http import HttpSettings, max_in_flight_extra
from fxiaoke_k3cloud.hooks.fxiaoke_query import VOIDED_QUERIES
from fxiaoke_k3cloud.hooks.fxiaoke_throttle import DEFAULT_CALLS_PER_20S, GATEWAY_LIMIT_PER_20S

DEFAULT_HOST = "https://open.fxiaoke.com"
DEFAULT_MAX_IN_FLIGHT = 4  # query pages a cursor query reads at once (connection extra max_in_flight)


def _optional_int(extra: Mapping[str, Any], key: str, *, low: int, high: int | None = None) -> int | None:
    value = extra.get(key)
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"connection extra '{key}' must be an integer, got {value!r}") from None
    if number < low or (high is not None and number > high):
        bounds = f"from {low} to {high}" if high is not None else f">= {low}"
        raise ConfigError(f"connection extra '{key}' must be {bounds}, got {number}")
    return number


def base_url_of(host: str | None) -> str:
    """``https://open.fxiaoke.com`` by default; a bare host gets ``https://``; no trailing slash."""
    host = (host or "").strip()
    if not host:
        return DEFAULT_HOST
    if "://" not in host:
        host = "https://" + host
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"connection host must be a URL like {DEFAULT_HOST}, got {host!r}")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


@dataclass(frozen=True)
class FxiaokeSettings:
    """Everything the hook needs from the Airflow connection (A2's layout: login/password/extras)."""

    base_url: str
    app_id: str
    app_secret: str
    permanent_code: str
    open_user_id: str | None
    mobile: str | None
    calls_per_20s: int
    call_budget: int | None
    http: HttpSettings
    #: How voided rows are asked for (``include_voided``): ``folded`` (default) — one query whose filter names
    #: every life_status; ``separate`` — the default query, then a second one with ``life_status EQ invalid``.
    voided_query: str = "folded"
    #: Query pages one cursor query has in flight at once (extra ``max_in_flight``; 1 = one request at a time).
    #: The gateway limits the rate (the throttle), not concurrency: more in flight hides the per-call latency.
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).netloc

    @property
    def token_key(self) -> tuple[str, str, str]:
        return (self.base_url, self.app_id, self.permanent_code)

    @classmethod
    def from_connection(
        cls,
        *,
        conn_id: str,
        host: str | None,
        login: str | None,
        password: str | None,
        extra: Mapping[str, Any],
    ) -> "FxiaokeSettings":
        missing = [
            name
            for name, value in (
                ("login (app id, FSAID_…)", login),
                ("password (app secret)", password),
                ("extra 'permanent_code'", extra.get("permanent_code")),
            )
            if not value
        ]
        if missing:
            raise ConfigError(f"connection '{conn_id}' lacks {', '.join(missing)} (developer mode of the self-built app)")
        open_user_id = str(extra.get("open_user_id") or "").strip() or None
        mobile = str(extra.get("mobile") or "").strip() or None
        if not open_user_id and not mobile:
            raise ConfigError(
                f"connection '{conn_id}' needs extra 'open_user_id' (FSUID_…, a CRM admin is best) or 'mobile' "
                "(resolved once via /cgi/user/getByMobile)"
            )
        calls = _optional_int(extra, "calls_per_20s", low=1, high=GATEWAY_LIMIT_PER_20S)
        voided_query = str(extra.get("voided_query") or "folded").strip().lower()
        if voided_query not in VOIDED_QUERIES:
            raise ConfigError(f"connection '{conn_id}': extra 'voided_query' must be one of "
                              f"{', '.join(VOIDED_QUERIES)}, got {extra.get('voided_query')!r}")
        return cls(
            base_url=base_url_of(host),
            app_id=str(login),
            app_secret=str(password),
            permanent_code=str(extra["permanent_code"]),
            open_user_id=open_user_id,
            mobile=mobile,
            calls_per_20s=calls or DEFAULT_CALLS_PER_20S,
            call_budget=_optional_int(extra, "call_budget", low=1),
            http=HttpSettings.from_extra(extra),
            voided_query=voided_query,
            max_in_flight=max_in_flight_extra(extra, system="fxiaoke", conn_id=conn_id, default=DEFAULT_MAX_IN_FLIGHT,
                                              what="query pages a cursor query reads at once"),
        )


"""K3Cloud authentication: login request bodies, login-result checks and the SDK's signed headers (spec §2).

Pure functions only — no I/O — so the exact algorithms can be tested against the spec's test vectors.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import quote, urlsplit

from fxiaoke_k3cloud.errors import AuthenticationError, ConfigError

SYSTEM = "k3cloud"
AUTH_MODES = ("password", "app_secret", "signed")
VALIDATE_USER = "Kingdee.BOS.WebApi.ServicesStub.AuthService.ValidateUser"
LOGIN_BY_APP_SECRET = "Kingdee.BOS.WebApi.ServicesStub.AuthService.LoginByAppSecret"
LOGOUT = "Kingdee.BOS.WebApi.ServicesStub.AuthService.Logout"
SESSION_COOKIE = "kdservice-sessionid"

# The official SDKs XOR the AppId's secret part with this constant to get the gateway client secret (§2.7).
_CLIENT_SECRET_XOR_KEY = b"0054f397c6234378b09ca7d3e5debce7"

_LOGIN_RESULT_NAMES = {
    1: "Success",
    0: "PWError",
    -1: "Failure",
    -2: "PWInvalid_Optional",
    -3: "PWInvalid_Required",
    -4: "Wanning",
    -5: "DealWithForm",
    -6: "EntryCloudUnBind",
    -7: "Activation",
}


@dataclass(frozen=True)
class K3Credentials:
    """What a K3CloudHook needs to authenticate, read from the Airflow connection."""

    base_url: str  # ends with '/'
    acct_id: str
    username: str
    auth_mode: str
    password: str = ""
    app_id: str = ""
    app_secret: str = ""
    lcid: int = 2052
    org_number: str = "0"

    def __post_init__(self) -> None:
        missing = [name for name in ("base_url", "acct_id", "username") if not getattr(self, name)]
        if self.auth_mode not in AUTH_MODES:
            raise ConfigError(f"k3cloud connection extra 'auth_mode' must be one of {AUTH_MODES}, got {self.auth_mode!r}")
        if self.auth_mode == "password" and not self.password:
            missing.append("password")
        if self.auth_mode in ("app_secret", "signed"):
            missing += [name for name in ("app_id", "app_secret") if not getattr(self, name)]
        if missing:
            raise ConfigError(
                f"k3cloud connection is missing {', '.join(missing)} (auth_mode={self.auth_mode}); "
                "set host (base URL ending /k3cloud/), login (user name), password and the extras acct_id, app_id, app_secret"
            )

    def __repr__(self) -> str:  # never show secrets in tracebacks or logs
        return f"K3Credentials(base_url={self.base_url!r}, acct_id={self.acct_id!r}, username={self.username!r}, auth_mode={self.auth_mode!r})"


def login_request(creds: K3Credentials) -> tuple[str, dict[str, Any]]:
    """The service name and named-parameter body of the session login for ``creds.auth_mode``."""
    if creds.auth_mode == "password":
        body = {"acctID": creds.acct_id, "username": creds.username, "password": creds.password, "lcid": creds.lcid}
        return VALIDATE_USER, body
    if creds.auth_mode == "app_secret":
        body = {
            "acctID": creds.acct_id,
            "username": creds.username,
            "appId": creds.app_id,
            "appSecret": creds.app_secret,
            "lcid": creds.lcid,
        }
        return LOGIN_BY_APP_SECRET, body
    raise ConfigError(f"auth_mode {creds.auth_mode!r} does not log in (signed headers are stateless)")


def session_id_from_login(body: Any, creds: K3Credentials, *, cookie_session_id: str | None = None) -> str:
    """Check a login answer (success only if ``LoginResultType == 1``) and return the session id.

    :raises AuthenticationError: with LoginResultType, Message/MessageCode and what to check.
    """
    if not isinstance(body, Mapping) or "LoginResultType" not in body:
        raise AuthenticationError(
            f"the login answer of {creds.base_url} has no LoginResultType; is that the K3Cloud base URL "
            "(https://<host>/k3cloud/)?",
            system=SYSTEM,
            endpoint=login_request(creds)[0],
        )
    result_type = body.get("LoginResultType")
    by_api = body.get("IsSuccessByAPI")
    if result_type == 1 and str(by_api).lower() != "false":
        session_id = body.get("KDSVCSessionId") or cookie_session_id
        if session_id:
            return str(session_id)
        reason = "login succeeded but returned no KDSVCSessionId and no kdservice-sessionid cookie"
    else:
        name = _LOGIN_RESULT_NAMES.get(result_type, "unknown") if isinstance(result_type, int) else "unknown"
        reason = (
            f"LoginResultType={result_type} ({name}), Message={body.get('Message')!r}, "
            f"MessageCode={body.get('MessageCode')!r}"
        )
    secret = "password" if creds.auth_mode == "password" else "app id / app secret"
    raise AuthenticationError(
        f"K3Cloud login as {creds.username!r} (data center of extra acct_id) failed: {reason}. "
        f"Check the acct id (data center), the user name, the {secret}, that the app authorization "
        "(第三方系统登录授权) is enabled and bound to this user, that the user is not locked after repeated failures, "
        "and the server's IP whitelist.",
        system=SYSTEM,
        endpoint=login_request(creds)[0],
        code=result_type,
    )


# --- signed-header mode (official SDK 8.x, spec §2.7) -----------------------------------------------------


def kdsign(key: str, message: str) -> str:
    """base64 of the lower-case hex HMAC-SHA256 digest (the SDK encodes the hex text, not the raw bytes)."""
    digest = hmac.new(key.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()
    return base64.b64encode(digest.encode("ascii")).decode("ascii")


def client_secret_from_app_id(app_id: str) -> str:
    """Derive the gateway client secret from the AppId's part after ``_``; empty if it is not 32 chars (like the SDK)."""
    _, _, secret_part = app_id.partition("_")
    if len(secret_part) != 32:
        return ""
    raw = base64.b64decode(secret_part)
    mixed = bytes(b ^ _CLIENT_SECRET_XOR_KEY[i % len(_CLIENT_SECRET_XOR_KEY)] for i, b in enumerate(raw))
    return base64.b64encode(mixed).decode("ascii")


def app_data(creds: K3Credentials) -> str:
    """The plaintext of X-Kd-Appdata: ``acct,user,lcid,org``."""
    return f"{creds.acct_id},{creds.username},{creds.lcid},{creds.org_number or '0'}"


def signed_headers(creds: K3Credentials, url: str, *, timestamp: int | None = None) -> dict[str, str]:
    """Headers that authenticate one POST to ``url`` without a login (SDK-Py flavour: second timestamps).

    The path is taken with ``urlsplit`` instead of the SDK's "first / after index 10" heuristic; both agree
    for every real host name.
    """
    ts = str(int(time.time()) if timestamp is None else timestamp)
    path = quote(urlsplit(url).path, safe="")  # '/' must become %2F, as in the SDK
    api_message = f"POST\n{path}\n\nx-api-nonce:{ts}\nx-api-timestamp:{ts}\n"
    plain = app_data(creds)
    return {
        "X-Api-ClientID": creds.app_id.partition("_")[0],
        "X-Api-Auth-Version": "2.0",
        "x-api-timestamp": ts,
        "x-api-nonce": ts,
        "x-api-signheaders": "x-api-timestamp,x-api-nonce",
        "X-Api-Signature": kdsign(client_secret_from_app_id(creds.app_id), api_message),
        "X-Kd-Appkey": creds.app_id,
        "X-Kd-Appdata": base64.b64encode(plain.encode("utf-8")).decode("ascii"),
        "X-Kd-Signature": kdsign(creds.app_secret, creds.app_id + plain),
    }

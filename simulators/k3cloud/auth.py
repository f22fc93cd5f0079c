"""Authentication: session logins (§2.1–2.5), session carriage (§2.6) and the SDK's signed headers (§2.7)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import quote

from .config import SimConfig

XOR_KEY = b"0054f397c6234378b09ca7d3e5debce7"
DISPLAY_VERSION = "9.0.553.10"
# Our wording (no public body of the real refusal was found; README "Sessions"): the login-failure shape of §2.5.
SESSION_LIMIT_MESSAGE = ("用户“{user}”的在线会话数已达到上限（{limit}个），不能再登录。"
                         "请注销（Logout）不再使用的会话，或等待会话超时后再试。")


class SessionLimitReached(Exception):
    """A new session would exceed ``max_sessions_per_user``."""


def kdsign(key: str, msg: str) -> str:
    """base64 of the lower-case hex HMAC-SHA256 (88 chars): the SDKs' signature primitive."""
    digest = hmac.new(key.encode("utf-8"), msg.encode("utf-8"), hashlib.sha256).hexdigest()
    return base64.b64encode(digest.encode("ascii")).decode("ascii")


def login_sign(acct_id: str, username: str, app_id: str, app_secret: str, timestamp: str) -> str:
    """LoginBySign: sort the five values ordinally, concatenate, SHA-256, lower-case hex."""
    parts = sorted([acct_id, username, app_id, app_secret, str(timestamp)])
    return hashlib.sha256("".join(parts).encode("utf-8")).hexdigest()


def client_secret(app_id: str) -> str:
    """The X-Api client secret the SDK derives from the AppId (base64 → XOR fixed key → base64); '' if malformed."""
    _, _, tail = app_id.partition("_")
    if len(tail) != 32:
        return ""
    raw = base64.b64decode(tail)
    return base64.b64encode(bytes(b ^ XOR_KEY[i] for i, b in enumerate(raw))).decode("ascii")


def api_signature(secret: str, path: str, nonce: str, timestamp: str) -> str:
    """X-Api-Signature over the encoded request path, nonce and timestamp."""
    enc = quote(path, encoding="utf-8").replace("/", "%2F")
    return kdsign(secret, f"POST\n{enc}\n\nx-api-nonce:{nonce}\nx-api-timestamp:{timestamp}\n")


@dataclass
class Session:
    sid: str  # KDSVCSessionId (GUID) = kdservice-sessionid cookie
    aspnet_id: str  # Context.SessionId = ASP.NET_SessionId cookie (24 chars)
    username: str
    lcid: int
    org_number: str = "0"


class Auth:
    """Sessions of one simulator instance; every check compares against the configured credentials."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.sessions: dict[str, Session] = {}
        self.logins = 0  # sessions opened (password/app-secret/sign logins and cookieless signed calls)
        self.logouts = 0  # sessions closed by Logout

    # --- session carriage ----------------------------------------------------------------------
    def new_session(self, username: str, lcid: int, org_number: str = "0") -> Session:
        """Open a session; refuse beyond the per-user limit (real servers limit online users / licences)."""
        limit = self.config.max_sessions_per_user
        if limit and sum(1 for s in self.sessions.values() if s.username.lower() == username.lower()) >= limit:
            raise SessionLimitReached(SESSION_LIMIT_MESSAGE.format(user=username, limit=limit))
        self.logins += 1
        aspnet = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz012345") for _ in range(24))
        session = Session(sid=str(uuid.uuid4()), aspnet_id=aspnet, username=username, lcid=lcid, org_number=org_number)
        self.sessions[session.sid] = session
        return session

    def from_request(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> Session | None:
        """A live session named by the cookie, the ``kdservice-sessionid`` header or the ``SID`` header."""
        for sid in (cookies.get("kdservice-sessionid"), headers.get("kdservice-sessionid"), headers.get("sid")):
            if sid and sid.strip() in self.sessions:
                return self.sessions[sid.strip()]
        return None

    def from_signature(self, headers: Mapping[str, str], path: str) -> Session | None:
        """Validate the SDK's X-Kd-* (and optionally X-Api-*) headers; None if absent or wrong."""
        app_key, app_data, signature = (headers.get(h) for h in ("x-kd-appkey", "x-kd-appdata", "x-kd-signature"))
        if not (app_key and app_data and signature):
            return None
        cfg = self.config
        try:
            plain = base64.b64decode(app_data).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None
        parts = plain.split(",")
        if len(parts) < 3 or app_key != cfg.app_id or parts[0] != cfg.acct_id or parts[1] != cfg.username:
            return None
        if not hmac.compare_digest(signature, kdsign(cfg.app_secret, app_key + plain)):
            return None
        if cfg.verify_api_signature and not self._api_signature_ok(headers, path):
            return None
        lcid = int(parts[2]) if parts[2].isdigit() else cfg.lcid
        org = parts[3] if len(parts) > 3 and parts[3] not in ("", "null") else "0"
        # Every signed call without a live session cookie opens a new server session (the SDK replays the cookie
        # it gets back for exactly that reason); a caller that drops the cookie piles sessions up to the limit.
        return self.new_session(cfg.username, lcid, org)

    def _api_signature_ok(self, headers: Mapping[str, str], path: str) -> bool:
        # Timestamps may be seconds (SDK-Py) or milliseconds (SDK-Java); no window is enforced (unknown on real servers).
        ts, nonce, sig = headers.get("x-api-timestamp"), headers.get("x-api-nonce"), headers.get("x-api-signature")
        if not (ts and nonce and sig):
            return False
        expected = api_signature(client_secret(self.config.app_id), path, nonce, ts)
        return hmac.compare_digest(sig, expected)

    # --- login services ------------------------------------------------------------------------
    def login(self, method: str, p: Mapping[str, Any]) -> tuple[dict[str, Any], Session | None]:
        """Run one AuthService login method; returns the response body and the new session (if any)."""
        cfg = self.config
        acct, user = str(p.get("acctid") or ""), str(p.get("username") or "")
        lcid = _int(p.get("lcid"), cfg.lcid)
        if method not in ("validateuser", "validateuser2", "loginbyappsecret", "loginbyappsecret2", "loginbysign"):
            return failure(-1, f"模拟器不支持登录方式 {method}"), None
        if acct != cfg.acct_id:
            return failure(0, "数据中心不存在或已停用，请检查账套ID(acctID)。"), None
        if user.lower() != cfg.username.lower():
            return failure(-1, "用户名或密码错误！"), None
        if method.startswith("validateuser"):
            if str(p.get("password") or "") != cfg.password:
                return failure(-1, "用户名或密码错误！"), None
        elif method.startswith("loginbyappsecret"):
            if str(p.get("appid") or "") != cfg.app_id or str(p.get("appsecret") or "") != cfg.app_secret:
                return failure(-1, "应用ID或应用密钥不正确，签名校验失败。", "002005000003016"), None
        else:
            expected = login_sign(acct, user, cfg.app_id, cfg.app_secret, str(p.get("timestamp") or ""))
            if str(p.get("appid") or "") != cfg.app_id or not hmac.compare_digest(str(p.get("sign") or "").lower(), expected):
                return failure(-1, "签名校验失败，请检查应用ID、应用密钥和时间戳。", "002005000003016"), None
        try:
            session = self.new_session(cfg.username, lcid)
        except SessionLimitReached as exc:
            return failure(-1, str(exc)), None
        body = success_body(session, cfg)
        if method.startswith("loginbyappsecret") and cfg.app_secret_null_session_id:
            body["KDSVCSessionId"] = None  # some servers: only the kdservice-sessionid cookie carries it
        return body, session

    def logout(self, session: Session | None) -> None:
        if session is not None and self.sessions.pop(session.sid, None) is not None:
            self.logouts += 1

    def drop(self, session: Session) -> None:
        """Lose a session (fault injection), not counted as a logout."""
        self.sessions.pop(session.sid, None)

    def expire_all(self) -> None:
        self.sessions.clear()


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def failure(result_type: int, message: str, message_code: str | None = None) -> dict[str, Any]:
    return {"Message": message, "MessageCode": message_code, "LoginResultType": result_type, "Context": None,
            "KDSVCSessionId": None, "FormId": None, "RedirectFormParam": None, "FormInputObject": None,
            "ErrorStackTrace": None, "Lcid": 0, "AccessToken": None, "CustomParam": {}, "KdAccessResult": None,
            "IsSuccessByAPI": False}


def success_body(session: Session, cfg: SimConfig) -> dict[str, Any]:
    """The §2.5 login response (trimmed to what clients read, in the server's key order)."""
    locale = {2052: "zh-CN", 1033: "en-US", 3076: "zh-TW"}.get(session.lcid, "zh-CN")
    context = {
        "UserLocale": locale, "LogLocale": locale, "DBid": cfg.acct_id, "DatabaseType": 3,
        "SessionId": session.aspnet_id,
        "UseLanguages": [{"LocaleId": 2052, "LocaleName": "中文(简体)", "Alias": "CN", "LicenseType": 0}],
        "UserId": cfg.user_id, "UserName": cfg.username, "CustomName": cfg.data_center_name,
        "DisplayVersion": DISPLAY_VERSION, "DataCenterName": cfg.data_center_name, "UserToken": str(uuid.uuid4()),
        "CurrentOrganizationInfo": {"ID": 1, "AcctOrgType": "1", "Name": "总部", "FunctionIds": [101, 102, 103, 104]},
        "IsCH_ZH_AutoTrans": False, "ClientType": 32, "GDCID": "", "Gsid": None, "TRLevel": 0, "ProductEdition": 0,
        "DataCenterNumber": "SIM", "ContextResultType": 0, "TenantId": "", "IsDeployAsPublicCloud": False,
    }
    return {"Message": None, "MessageCode": "CheckPasswordPolicy", "LoginResultType": 1, "Context": context,
            "KDSVCSessionId": session.sid, "FormId": None, "RedirectFormParam": None, "FormInputObject": None,
            "ErrorStackTrace": None, "Lcid": 0, "AccessToken": None, "CustomParam": {}, "KdAccessResult": None,
            "IsSuccessByAPI": True}


def data_centers(cfg: SimConfig) -> list[dict[str, Any]]:
    return [{"Id": cfg.acct_id, "Number": "SIM", "Name": cfg.data_center_name, "Version": DISPLAY_VERSION, "GDCID": "",
             "AuthenticationMethods": [{"AuthenticationMethodType": 0, "Name": "金蝶云星空账号"}]}]

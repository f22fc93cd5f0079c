"""Wire format: request envelopes in, compact ``ResponseStatus`` bodies out (k3cloud-webapi.md §1.3, §3.2, §4.4)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

SESSION_LOST = "会话信息已丢失，请重新登录"
# 网控 (network control): another user or session holds the document (real text, spec §6).
LOCK_MESSAGE = "“{user}”使用业务单据：“{form}”业务操作-“[{form}-修改]”冲突，请稍候再使用。"
_QUERY_SERVICES = ("executebillquery", "billquery")

# Ordered parameter names of each service (positional ``parameters`` arrays bind in this order).
SERVICE_PARAMS: dict[str, list[str]] = {
    "validateuser": ["acctid", "username", "password", "lcid"],
    "validateuser2": ["acctid", "username", "password", "iskickoff", "lcid"],
    "loginbyappsecret": ["acctid", "username", "appid", "appsecret", "lcid"],
    "loginbyappsecret2": ["acctid", "username", "appid", "appsecret", "iskickoff", "lcid"],
    "loginbysign": ["acctid", "username", "appid", "timestamp", "sign", "lcid"],
    "logout": [],
    "getdatacenterlist": [],
    "excuteoperation": ["formid", "opnumber", "data"],
    "executeoperation": ["formid", "opnumber", "data"],
    "queryasyncresult": ["queryinfo"],
}
DATA_ONLY = {"executebillquery", "billquery", "querybusinessinfo", "switchorg", "workflowaudit", "sendmsg",
             "groupdelete", "querygroupinfo", "attachmentupload", "attachmentdownload"}


class K3Error(Exception):
    """A business failure: becomes one ``Errors`` item and the response's ``MsgCode``."""

    def __init__(self, message: str, msg_code: int = 11, field_name: str | None = None, dindex: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.msg_code = msg_code
        self.field_name = field_name
        self.dindex = dindex

    def item(self) -> dict[str, Any]:
        return {"FieldName": self.field_name, "Message": self.message, "DIndex": self.dindex}


class BadRequest(Exception):
    """The body could not be bound to the service's parameters."""


_DECIMAL_MARK = "\x01decimal:"
_DECIMAL_TOKEN = re.compile(r'"\\u0001decimal:([-+0-9.Ee]+)"')


def _decimal_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _DECIMAL_MARK + format(value, "f")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(obj: Any) -> str:
    """Compact JSON like Json.NET: clients search the raw text for ``,"IsSuccess":false,``.

    A Decimal (a number kept exactly, like K3Cloud's decimal(23,10)) is written as a JSON number with all its digits.
    """
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=_decimal_default)
    return _DECIMAL_TOKEN.sub(r"\1", text) if "\\u0001decimal:" in text else text


def response_status(errors: list[K3Error] | None = None, successes: list[dict[str, Any]] | None = None,
                    messages: list[dict[str, Any]] | None = None, msg_code: int | None = None) -> dict[str, Any]:
    """The ``ResponseStatus`` object with the server's key order; ``ErrorCode`` only on failure."""
    errors = errors or []
    status: dict[str, Any] = {}
    if errors:
        status["ErrorCode"] = 500
    status["IsSuccess"] = not errors
    status["Errors"] = [e.item() for e in errors]
    status["SuccessEntitys"] = successes or []
    status["SuccessMessages"] = messages or []
    status["MsgCode"] = msg_code if msg_code is not None else (errors[0].msg_code if errors else 0)
    return status


def result_body(status: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"Result": {"ResponseStatus": status, **extra}}


def error_body(service: str, error: K3Error, *, msg_code: bool = True) -> Any:
    """A failure as the service reports it: query services wrap the object in two arrays.

    :param msg_code: False drops the ``MsgCode`` key, as some servers answer session loss and lock conflicts.
    """
    status = response_status([error])
    if not msg_code:
        del status["MsgCode"]
    body = result_body(status)
    return [[body]] if service.lower() in _QUERY_SERVICES else body


def session_lost_body(service: str, shape: str) -> Any:
    """Session loss in one of the shapes real servers use (config ``session_lost_shape``)."""
    if shape == "bare_list":
        return [K3Error(SESSION_LOST, 1).item()]
    return error_body(service, K3Error(SESSION_LOST, 1), msg_code=shape != "text_only")


def lock_conflict_error(form: str, shape: str, user: str = "administrator", dindex: int = 0) -> K3Error:
    """A 网控 conflict: MsgCode 0 on real servers (``msgcode0``/``no_msgcode``), 13 in the docs (``msgcode13``)."""
    return K3Error(LOCK_MESSAGE.format(user=user, form=form), 13 if shape == "msgcode13" else 0, None, dindex)


def omit_empty(body: Any) -> Any:
    """A success answer as newer servers write it: no empty ``Errors``/``SuccessMessages``/``SuccessEntitys``,
    no ``MsgCode`` 0, no ``NeedReturnData`` made only of empty objects. Failures keep every key."""
    result = body.get("Result") if isinstance(body, dict) else None
    status = result.get("ResponseStatus") if isinstance(result, dict) else None
    if not isinstance(status, dict) or status.get("IsSuccess") is not True:
        return body
    slim = {k: v for k, v in status.items()
            if not (k in ("Errors", "SuccessMessages", "SuccessEntitys") and not v) and not (k == "MsgCode" and not v)}
    out = {k: v for k, v in result.items()
           if not (k == "NeedReturnData" and (not v or (isinstance(v, list) and all(x == {} for x in v))))}
    out["ResponseStatus"] = slim
    return {**body, "Result": out}


@dataclass
class Call:
    """A request bound to a service's parameters (names lower-cased)."""

    params: dict[str, Any] = field(default_factory=dict)
    top: dict[str, Any] = field(default_factory=dict)  # the raw top-level object (beginmethod/querymethod live here)

    def get(self, name: str, default: Any = None) -> Any:
        return self.params.get(name.lower(), default)

    def data(self) -> dict[str, Any]:
        """``data`` as an object; clients send it as an object or as a JSON string."""
        value = self.get("data")
        if value is None or value == "":
            return {}
        if isinstance(value, str):
            try:
                value = json.loads(value, parse_float=Decimal)
            except ValueError as exc:
                raise BadRequest(f"data 不是合法的JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise BadRequest("data 必须是JSON对象")
        return value


def parse_body(raw: bytes, service: str) -> Call:
    """Bind any of the three envelopes (named, ``parameters`` array, legacy string) or a form-encoded body."""
    text = raw.decode("utf-8-sig", errors="replace").strip()
    top: Any = {}
    if text:
        try:
            top = json.loads(text, parse_float=Decimal)
        except ValueError:
            form = parse_qs(text, keep_blank_values=True)
            if not form:
                raise BadRequest("请求体不是合法的JSON") from None
            top = {k: v[-1] for k, v in form.items()}
    if not isinstance(top, dict):
        raise BadRequest("Additional text found in JSON string after finishing deserializing object.")
    named = {str(k).lower(): v for k, v in top.items()}
    order = SERVICE_PARAMS.get(service.lower()) or (["data"] if service.lower() in DATA_ONLY else ["formid", "data"])
    params: dict[str, Any] = {}
    positional = named.pop("parameters", None)
    if isinstance(positional, str):
        try:
            positional = json.loads(positional, parse_float=Decimal)
        except ValueError as exc:
            raise BadRequest(f"parameters 不是合法的JSON: {exc}") from exc
    if isinstance(positional, list):
        params.update(zip(order, positional))
    elif isinstance(positional, dict):  # some clients send the single argument object itself
        params[order[0] if order else "data"] = positional
    for k, v in named.items():
        params.setdefault(k, v)
    return Call(params=params, top=named)

"""Directory and messaging handlers: users, departments, message/send (spec §2.3, §5).

Results live at the top level of the envelope here (``empList``, ``userList``, ``departments``), unlike CRM.
"""

from __future__ import annotations

import math
from typing import Any

from .envelope import (
    DEPARTMENT_NOT_FOUND,
    EMPLOYEE_NOT_FOUND,
    EMPTY_TEXT,
    ILLEGAL_MSG_TYPE,
    ILLEGAL_TO_USER,
    MISSING_TO_USER,
    ApiError,
    param_error,
)
from .fixtures import WHOLE_COMPANY
from .state import CallContext, SimState

MAX_TO_USER = 500
MAX_ARTICLES = 7
MAX_TITLE = 45


def _public(emp: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in emp.items() if k != "employeeId" and v is not None}


def corp_access_token(sim: SimState, ctx: CallContext, body: dict[str, Any]) -> dict[str, Any]:
    """Token, corpId and remaining lifetime, all top level (spec §2.1)."""
    token, expires_in = sim.tokens.issue(body)
    return {"corpAccessToken": token, "corpId": sim.config.corp_id, "expiresIn": expires_in}


def get_by_mobile(sim: SimState, ctx: CallContext, body: dict[str, Any]) -> dict[str, Any]:
    mobile = body.get("mobile")
    if not isinstance(mobile, str) or not mobile:
        raise param_error("mobile is required")
    return {"empList": [_public(e) for e in sim.store.employees.values() if e["mobile"] == mobile]}


def user_get(sim: SimState, ctx: CallContext, body: dict[str, Any]) -> dict[str, Any]:
    emp = sim.store.employees.get(body.get("openUserId") or "")
    if emp is None:
        raise ApiError(EMPLOYEE_NOT_FOUND, "employee does not exist", "员工不存在")
    return _public(emp)


def _department_members(sim: SimState, body: dict[str, Any]) -> list[dict[str, Any]]:
    raw = body.get("departmentId", WHOLE_COMPANY)
    try:
        dept = int(raw)
    except (TypeError, ValueError):
        raise param_error(f"departmentId must be a number, got {raw!r}") from None
    if dept not in sim.store.departments:
        raise ApiError(DEPARTMENT_NOT_FOUND, "department does not exist", "部门不存在")
    wanted = {dept}
    if body.get("fetchChild") or dept == WHOLE_COMPANY:
        changed = True
        while changed:
            before = len(wanted)
            wanted |= {d for d, v in sim.store.departments.items() if v["parentId"] in wanted}
            changed = len(wanted) != before
    return [e for e in sim.store.employees.values() if set(e["departmentIds"]) & wanted]


def user_list(sim: SimState, ctx: CallContext, body: dict[str, Any]) -> dict[str, Any]:
    return {"userList": [_public(e) for e in _department_members(sim, body)]}


def user_simple_list(sim: SimState, ctx: CallContext, body: dict[str, Any]) -> dict[str, Any]:
    return {"userList": [{"openUserId": e["openUserId"], "name": e["name"]} for e in _department_members(sim, body)]}


def batch_by_upd_time(sim: SimState, ctx: CallContext, body: dict[str, Any]) -> dict[str, Any]:
    try:
        size = int(body.get("pageSize", 20))
        number = int(body.get("pageNumber", 1))
        start = int(body["startTime"]) if body.get("startTime") is not None else None
        end = int(body["endTime"]) if body.get("endTime") is not None else None
    except (TypeError, ValueError):
        raise param_error("pageSize, pageNumber, startTime and endTime must be numbers") from None
    if not 1 <= size <= 1000 or number < 1:
        raise param_error("pageSize must be 1..1000 and pageNumber ≥ 1")
    rows = sorted(sim.store.employees.values(), key=lambda e: (e["updateTime"], e["openUserId"]))
    rows = [e for e in rows if (start is None or e["updateTime"] >= start) and (end is None or e["updateTime"] <= end)]
    page = [_public(e) for e in rows[(number - 1) * size:number * size]]
    return {
        "employees": page,
        # Compatibility shim: crm_cli (A3) reads empList from this endpoint; the documented key is employees.
        "empList": page,
        "totalCount": len(rows),
        "pageCount": math.ceil(len(rows) / size) if rows else 0,
        "pageNumber": number,
        "lastChangedTime": max((e["updateTime"] for e in rows), default=0),
    }


def department_list(sim: SimState, ctx: CallContext, body: dict[str, Any]) -> dict[str, Any]:
    return {"departments": [dict(d) for d in sim.store.departments.values()]}


def _check_payload(msg_type: str, body: dict[str, Any]) -> None:
    payload = body.get(msg_type)
    if msg_type == "text":
        content = payload.get("content") if isinstance(payload, dict) else None
        if not isinstance(content, str) or not content.strip():
            raise ApiError(EMPTY_TEXT, "text.content must not be empty", "文本消息内容为空")
    elif msg_type == "composite":
        head = payload.get("head") if isinstance(payload, dict) else None
        link = payload.get("link") if isinstance(payload, dict) else None
        if not isinstance(head, dict) or not head.get("title"):
            raise param_error("composite.head.title is required")
        if not isinstance(link, dict) or not link.get("title") or not link.get("url"):
            raise param_error("composite.link {title, url} is required")
    else:
        articles = payload if isinstance(payload, list) else None
        if not articles or len(articles) > MAX_ARTICLES:
            raise param_error(f"articles must hold 1..{MAX_ARTICLES} entries")
        for art in articles:
            if not isinstance(art, dict) or not art.get("title") or len(str(art["title"])) > MAX_TITLE:
                raise param_error(f"every article needs a title of at most {MAX_TITLE} characters")


def message_send(sim: SimState, ctx: CallContext, body: dict[str, Any]) -> dict[str, Any]:
    to_user = body.get("toUser")
    if to_user in (None, "", []):
        raise ApiError(MISSING_TO_USER, "the parameter toUser is missing", "缺少参数toUser")
    known = sim.store.employees
    if not isinstance(to_user, list) or len(to_user) > MAX_TO_USER or any(u not in known for u in to_user):
        raise ApiError(ILLEGAL_TO_USER, "the parameter toUser is illegal", f"toUser 必须是 1..{MAX_TO_USER} 个已知员工")
    msg_type = body.get("msgType")
    if msg_type not in ("text", "composite", "articles"):
        raise ApiError(ILLEGAL_MSG_TYPE, "the parameter msgType is illegal", "msgType 只能是 text/composite/articles")
    _check_payload(msg_type, body)
    sim.store.messages.append({
        "toUser": list(to_user), "msgType": msg_type, msg_type: body[msg_type],
        "sentAt": sim.clock.now_ms(), "traceId": ctx.trace,
    })
    return {}

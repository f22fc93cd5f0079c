"""FastAPI app factory: the ``…/k3cloud/<Ns>.<Class>.<Method>.common.kdsvc`` API and the ``/_sim/`` admin API."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from .. import service_time
from .auth import Session, SessionLimitReached, data_centers
from .config import SimConfig
from .faults import FaultConfigError
from .forms import get_form
from .save import Rejected, SaveOptions
from .services import CANONICAL, WRITES, Simulator
from .wire import (BadRequest, K3Error, dumps, error_body, lock_conflict_error, omit_empty, parse_body,
                   session_lost_body)

# Anything ending in a ``k3cloud`` segment, then ``Namespace.Class.Method.common.kdsvc`` (IIS is case-insensitive).
SERVICE_PATH = re.compile(r"^/(?:[^?]*/)?k3cloud/(?P<service>[A-Za-z0-9_.]+)\.common\.kdsvc$", re.IGNORECASE)
LOGIN_METHODS = {"validateuser", "validateuser2", "loginbyappsecret", "loginbyappsecret2", "loginbysign",
                 "loginbysimplepassport", "loginbysimplepassport2", "loginbymobilecard", "loginbyrsaauth", "loginbysign2",
                 "validateuserendecode", "validatedomainuserendecode"}
JSON_TYPE = "application/json; charset=utf-8"
# A cloud tenant's WAF answers a request whose data contains "<" with this body (HTTP 200, §6).
WAF_BODY = [{"actionname": "showConfirm", "params": [{"msg": "请求参数存在可疑数据,当前请求已经被拦截规则"
                                                     "[caller_in_less_Point_Bracket]阻止!", "title": "", "type": 0}]}]
QUERY_METHODS = ("executebillquery", "billquery")


def k3_response(body: Any, session: Session | None = None, *, config: SimConfig | None = None) -> Response:
    if config is not None and config.omit_empty_keys:
        body = omit_empty(body)
    response = Response(content=dumps(body).encode("utf-8"), media_type=JSON_TYPE)
    if session is not None:
        # No Expires and no commas: SDK-Py splits the Set-Cookie header on commas (§2.6).
        response.headers.append("set-cookie", f"kdservice-sessionid={session.sid}; path=/")
        response.headers.append("set-cookie", f"ASP.NET_SessionId={session.aspnet_id}; path=/; HttpOnly")
    return response


def create_app(config: SimConfig | None = None) -> FastAPI:
    """Build one simulator; all state lives on ``app.state.sim`` (no module-global mutable state)."""
    config = config or SimConfig()
    sim = Simulator(config)
    if config.faults:
        sim.faults.set(config.faults)
    app = FastAPI(title="Kingdee K3Cloud Web API simulator", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sim = sim
    app.state.startup_protocol = config.protocol()  # /_sim/reset restores the switches the simulator started with
    _add_admin_routes(app, sim)
    in_flight = service_time.InFlight()

    @app.post("/{path:path}")
    async def call_service(path: str, request: Request) -> Response:
        match = SERVICE_PATH.match("/" + path)
        if match is None:
            return PlainTextResponse("Not Found", status_code=404)
        parts = match.group("service").split(".")
        method = parts[-1].lower()
        if len(parts) < 3 or (method not in sim.handlers() and method not in LOGIN_METHODS
                              and method not in ("logout", "getdatacenterlist", "queryasyncresult")):
            return PlainTextResponse("Not Found", status_code=404)
        sim.stats.count(CANONICAL.get(method, parts[-1]))
        sim.stats.enter()
        served = [False]
        try:
            return await _serve(method, request, served)
        finally:
            if not served[0]:
                sim.stats.leave()

    async def _serve(method: str, request: Request, served: list[bool]) -> Response:
        faults = sim.faults
        if faults.roll("error_rate"):
            return PlainTextResponse("502 Bad Gateway", status_code=int(faults.get("error_status", 502) or 502))
        if faults.get("latency_ms"):
            await asyncio.sleep(faults.get("latency_ms") / 1000.0)
        raw = await request.body()
        gate = in_flight.gate("api-user", int(faults.get("max_in_flight")))
        if gate is not None:
            await gate.acquire()
        try:
            started = time.perf_counter()
            response = _handle(sim, method, raw, request)
            sim.stats.service_seconds += time.perf_counter() - started
            await service_time.serve(faults.get, *service_time.k3_units(method, response.body), sim.stats)
        finally:
            if gate is not None:
                gate.release()
        if faults.roll("timeout_rate"):
            # The work is done; the answer comes too late for a client with a normal read timeout. The client gives
            # up on it (its read timeout is shorter), so it no longer counts as in flight.
            served[0] = True
            sim.stats.leave()
            await asyncio.sleep(faults.get("timeout_delay_s", 30) or 30)
        return response

    @app.api_route("/{path:path}", methods=["GET", "PUT", "PATCH", "DELETE"])
    async def not_found(path: str) -> Response:
        return PlainTextResponse("Not Found", status_code=404)

    return app


def _handle(sim: Simulator, method: str, raw: bytes, request: Request) -> Response:
    try:
        call = parse_body(raw, method)
    except BadRequest as exc:
        if method in LOGIN_METHODS:
            return k3_response({"Message": str(exc), "LoginResultType": -1, "IsSuccessByAPI": False})
        return k3_response(error_body(method, K3Error(str(exc), 8)))
    if method == "getdatacenterlist":
        return k3_response(data_centers(sim.config))
    if method == "logout":
        sim.auth.logout(sim.auth.from_request(request.headers, request.cookies))
        return k3_response(True)
    if method in LOGIN_METHODS:
        body, session = sim.auth.login(method, call.params)
        return k3_response(body, session)
    return _business(sim, method, call, request, raw.decode("utf-8", errors="replace"))


def _business(sim: Simulator, method: str, call: Any, request: Request, raw_text: str) -> Response:
    faults = sim.faults
    if faults.get("waf_angle_brackets") and ("<" in raw_text or "\\u003c" in raw_text.lower()):
        return k3_response(WAF_BODY)  # the gateway blocks before the application sees the call
    if faults.rate_limited(CANONICAL.get(method, method)):
        return k3_response(error_body(method, K3Error("接口调用频率超过限制，请稍后再试。", 14)))
    cfg = sim.config
    session = sim.auth.from_request(request.headers, request.cookies)
    new_session = None
    if session is None:
        try:
            session = new_session = sim.auth.from_signature(request.headers, request.url.path)
        except SessionLimitReached as exc:  # a signed call needs a server session too (MsgCode 7 许可错误)
            return k3_response(error_body(method, K3Error(str(exc), 7)))
    if session is None:
        return k3_response(session_lost_body(method, cfg.session_lost_shape))
    if faults.session_lost():
        sim.auth.drop(session)
        return k3_response(session_lost_body(method, cfg.session_lost_shape))
    if method in WRITES and faults.roll("lock_conflict_rate"):
        error = lock_conflict_error(str(call.get("formid") or "单据"), cfg.lock_conflict_shape)
        body = error_body(method, error, msg_code=cfg.lock_conflict_shape != "no_msgcode")
        return k3_response(body, new_session)
    if faults.roll("response_error_rate"):
        return PlainTextResponse('response_error:{"Message":"模拟的服务器异常","InnerExWrapper":null,"InnerException":null}')
    try:
        if method == "queryasyncresult":
            body = sim.query_async_result(call)
        elif "beginmethod" in call.top:
            body = sim.begin_query(method, call)
        else:
            body = sim.business(method, call)
    except K3Error as exc:
        body = error_body(method, exc)
    except BadRequest as exc:
        body = error_body(method, K3Error(str(exc), 8))
    except Exception as exc:  # noqa: BLE001 - the real server reports unhandled exceptions this way (§1.5)
        detail = {"Message": f"{type(exc).__name__}: {exc}", "InnerExWrapper": None, "InnerException": None}
        return PlainTextResponse("response_error:" + dumps(detail))
    if method in QUERY_METHODS and cfg.query_row_cap and isinstance(body, list) and len(body) > cfg.query_row_cap:
        if not (body and isinstance(body[0], list) and body[0] and isinstance(body[0][0], dict)):  # not an error
            body = body[:cfg.query_row_cap]  # at most N rows per call whatever Limit says (production notes)
    return k3_response(body, new_session, config=cfg)


def _add_admin_routes(app: FastAPI, sim: Simulator) -> None:
    @app.get("/_sim/health")
    async def health() -> dict[str, Any]:
        return {"ok": True}

    @app.post("/_sim/reset")
    async def reset() -> dict[str, Any]:
        sim.reset()
        sim.config.set_protocol(app.state.startup_protocol)
        return {"ok": True}

    @app.get("/_sim/protocol")
    async def get_protocol() -> dict[str, Any]:
        return sim.config.protocol()

    @app.post("/_sim/protocol")
    async def set_protocol(request: Request) -> Response:
        """Switch wire shapes (README "Protocol switches") until the next reset."""
        raw = await request.body()
        try:
            sim.config.set_protocol((await request.json()) if raw.strip() else {})
        except ValueError as exc:
            return JSONResponse({"ok": False, "error": str(exc)}, status_code=400)
        return JSONResponse({"ok": True, "protocol": sim.config.protocol()})

    @app.post("/_sim/seed")
    async def seed(request: Request) -> Response:
        payload = await request.json()
        forms = (payload or {}).get("forms") or {}
        created: dict[str, list[dict[str, Any]]] = {}
        for form_id, models in forms.items():
            form = get_form(form_id)
            if form is None:
                return JSONResponse({"ok": False, "error": f"unknown form {form_id!r}"}, status_code=400)
            for n, model in enumerate(models or []):
                status = str(next((v for k, v in model.items() if k.lower() == "fdocumentstatus"), "") or "C")
                try:
                    doc = sim.saver.save(form, model, SaveOptions(), dindex=n, seed_status=status)
                except Rejected as rej:
                    errors = [e.item() | {"MsgCode": e.msg_code} for e in rej.errors]
                    return JSONResponse({"ok": False, "form": form_id, "index": n, "errors": errors, "created": created},
                                        status_code=400)
                for key in ("FForbidStatus", "FCloseStatus", "FCancelStatus"):
                    value = next((v for k, v in model.items() if k.lower() == key.lower()), None)
                    if value:
                        doc.data[key] = value
                created.setdefault(form.form_id, []).append({"Id": doc.id, "Number": doc.number})
        return JSONResponse({"ok": True, "created": created})

    @app.get("/_sim/records/{form_id}")
    async def records(form_id: str) -> Response:
        form = get_form(form_id)
        if form is None:
            return JSONResponse({"ok": False, "error": f"unknown form {form_id!r}"}, status_code=404)
        return Response(content=dumps([doc.export() for doc in sim.store.all(form)]).encode("utf-8"), media_type=JSON_TYPE)

    @app.post("/_sim/faults")
    async def faults(request: Request) -> Response:
        raw = await request.body()
        profile = (await request.json()) if raw.strip() else {}
        try:
            sim.faults.set(profile or {})
        except FaultConfigError as exc:
            return JSONResponse({"ok": False, "error": str(exc)}, status_code=400)
        return JSONResponse({"ok": True, "faults": sim.faults.profile})

    @app.get("/_sim/stats")
    async def stats() -> dict[str, Any]:
        auth = sim.auth
        return {**sim.stats.as_json(),
                "sessions": {"live": len(auth.sessions), "opened": auth.logins, "logged_out": auth.logouts}}

    @app.post("/_sim/expire")
    async def expire() -> dict[str, Any]:
        sim.auth.expire_all()
        return {"ok": True}

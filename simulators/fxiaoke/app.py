"""The app factory and the single entry point every ``/cgi/...`` call goes through.

One entry point (rather than a FastAPI route per path) because every call shares the same pipeline: count it,
apply the fault profile, parse the body leniently, check the token (and acting user on CRM paths), run the
handler, wrap the result in the envelope. Handlers stay plain functions over ``SimState``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from . import crm, directory
from .. import service_time
from .admin import router as admin_router
from .config import SimConfig
from .envelope import (
    EMPTY_BODY,
    OPEN_USER_NOT_FOUND,
    ApiError,
    failure,
    gateway_trace_id,
    param_error,
    success,
    trace_id,
)
from .state import CallContext, SimState

log = logging.getLogger("simulators.fxiaoke")

TOKEN_PATH = "/cgi/corpAccessToken/get/V2"
Handler = Callable[[SimState, CallContext, dict[str, Any]], dict[str, Any]]


def _routes() -> dict[str, tuple[str, Handler]]:
    """Path → (kind, handler); kind "directory" calls need a token, "crm" calls also an acting user."""
    routes: dict[str, tuple[str, Handler]] = {
        TOKEN_PATH: ("token", directory.corp_access_token),
        "/cgi/user/getByMobile": ("directory", directory.get_by_mobile),
        "/cgi/user/get": ("directory", directory.user_get),
        "/cgi/user/list": ("directory", directory.user_list),
        "/cgi/user/simpleList": ("directory", directory.user_simple_list),
        "/cgi/user/get/batchByUpdTime": ("directory", directory.batch_by_upd_time),
        "/cgi/department/list": ("directory", directory.department_list),
        "/cgi/message/send": ("directory", directory.message_send),
        "/cgi/crm/v2/object/list": ("crm", crm.object_list),
        "/cgi/crm/v2/object/describe": ("crm", crm.describe),
    }
    for op, handler in crm.HANDLERS.items():
        routes[f"/cgi/crm/v2/data/{op}"] = ("crm", handler)
        routes[f"/cgi/crm/custom/v2/data/{op}"] = ("crm", handler)
    for op, handler in crm.CUSTOM_ONLY.items():
        routes[f"/cgi/crm/custom/v2/data/{op}"] = ("crm", handler)
    return routes


ROUTES = _routes()


def _parse(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise ApiError(EMPTY_BODY, "the POST body is empty", "POST请求体为空")
    try:
        body = json.loads(raw)
    except ValueError:
        raise param_error("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise param_error("the body must be a JSON object")
    return body


def _serve(sim: SimState, path: str, kind: str, handler: Handler, raw: bytes) -> dict[str, Any]:
    """Run one call to completion and return the envelope; never raises for API-level outcomes."""
    cfg = sim.config
    trace = gateway_trace_id() if kind == "token" else trace_id(None, None)
    try:
        fault = sim.faults.gate(path, data_call=kind != "token")
        if fault:
            raise fault
        body = _parse(raw)
        if kind == "token":
            return {**success(trace, **handler(sim, CallContext(path, False), body)), "errorMessage": "success"}
        sim.tokens.check(body)
        user = body.get("currentOpenUserId")
        trace = trace_id(cfg.enterprise_account, sim.employee_number(user) if user else -1000)
        if kind == "crm":
            if not user:
                raise ApiError(OPEN_USER_NOT_FOUND, "currentOpenUserId为必填项，不能为空", "currentOpenUserId is required")
            if user not in sim.store.employees:
                raise ApiError(OPEN_USER_NOT_FOUND, "openUserId not found", f"员工[{user}]不存在")
        ctx = CallContext(path=path, custom_prefix="/crm/custom/" in path, user=user, trace=trace)
        return success(trace, **handler(sim, ctx, body))
    except ApiError as exc:
        return failure(trace, exc.code, exc.message, exc.description)


def create_app(config: SimConfig | None = None) -> FastAPI:
    """A fresh simulator: its own state, clock, tokens and faults (nothing shared between apps)."""
    config = config or SimConfig()
    app = FastAPI(title="Fxiaoke OpenAPI simulator", docs_url="/_sim/docs", openapi_url="/_sim/openapi.json")
    app.state.sim = SimState(config)
    app.include_router(admin_router)

    @app.post("/cgi/{rest:path}")
    async def api_entry(request: Request) -> Any:
        sim: SimState = request.app.state.sim
        path = request.url.path  # query-string parameters such as thirdTraceId are ignored
        stats = sim.stats  # a reset meanwhile replaces it: leave the one entered
        stats.count(path)
        stats.enter()
        try:
            return await _answer(sim, path, request)
        finally:
            stats.leave()

    async def _answer(sim: SimState, path: str, request: Request) -> Any:
        faults = sim.faults
        if faults.latency_s:
            await asyncio.sleep(faults.latency_s)
        if faults.http_error():
            return HTMLResponse("<html><body><h1>502 Bad Gateway</h1></body></html>", status_code=502)
        raw = await request.body()
        started = time.perf_counter()
        route = ROUTES.get(path)
        if route is None:
            payload = failure(trace_id(None, None), 404, f"path {path} not found", "接口不存在")
            sim.stats.service_seconds += time.perf_counter() - started
            return JSONResponse(payload, status_code=404)
        payload = _serve(sim, path, route[0], route[1], raw)
        if not path.endswith("/query"):
            sim.store.version += 1  # may have changed data: cached query matches are stale (no await since _serve)
        sim.stats.service_seconds += time.perf_counter() - started
        await service_time.serve(lambda key: float(faults.profile.get(key, 0) or 0),
                                 *service_time.fx_units(path, payload), sim.stats)
        log.info("%s errorCode=%s traceId=%s", path, payload["errorCode"], payload["traceId"])
        delay = faults.timeout_delay_s()
        if delay:
            await asyncio.sleep(delay)  # the work is done; only the answer is late
        return JSONResponse(payload)

    return app

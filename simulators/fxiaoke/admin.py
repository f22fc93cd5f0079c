"""The ``/_sim/`` admin API of simulators.md, plus ``/_sim/clock``, ``/_sim/messages`` and ``/_sim/config``.

Faults never apply here, and these calls are not counted in ``/_sim/stats``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request

from .faults import FaultProfileError, Faults
from .fixtures import generate_demo
from .schema import DETAILS, OBJECTS
from .state import SimState
from .store import FieldValueError

def _data_may_change(request: Request):
    """Admin calls run in a worker thread beside the API's: cached query matches are dropped before and after."""
    request.app.state.sim.store.version += 1
    yield
    request.app.state.sim.store.version += 1


router = APIRouter(prefix="/_sim", dependencies=[Depends(_data_may_change)])


def _sim(request: Request) -> SimState:
    return request.app.state.sim


@router.get("/health")
def health() -> dict[str, Any]:
    return {"ok": True}


@router.post("/reset")
def reset(request: Request) -> dict[str, Any]:
    _sim(request).reset()
    return {"ok": True}


@router.post("/seed")
def seed(request: Request, payload: dict[str, Any] = Body(default_factory=dict)) -> dict[str, Any]:
    """Add records (system fields filled where missing; given ``_id``/times kept) and/or ``demo`` customers."""
    sim = _sim(request)
    objects = payload.get("objects") or {}
    unknown_keys = set(payload) - {"objects", "demo", "base_time_ms"}
    if unknown_keys or not isinstance(objects, dict):
        raise HTTPException(400, f"seed takes {{'objects': {{apiName: [records]}}, 'demo': N, 'base_time_ms': ms}}; "
                                 f"unexpected {sorted(unknown_keys)}")
    built: dict[str, list[dict[str, Any]]] = {}
    now = sim.clock.now_ms()
    admin = sim.config.open_user_id
    for api_name, rows in objects.items():
        obj = OBJECTS.get(api_name)
        if obj is None:
            raise HTTPException(400, f"unknown object {api_name!r}; known: {sorted(OBJECTS)}")
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise HTTPException(400, f"objects.{api_name} must be a list of records")
        out = built.setdefault(api_name, [])
        for row in rows:
            extra = [k for k in row if k not in obj.fields and k != "dataObjectApiName" and not k.endswith("__r")]
            if extra:
                raise HTTPException(400, f"{api_name} has no field(s) {extra}")
            try:
                out.append(sim.store.build(obj, row, now_ms=now, user=admin, keep_system=True))
            except FieldValueError as exc:
                raise HTTPException(400, str(exc)) from None
    # Store only after everything validated, so a bad seed changes nothing.
    for api_name, recs in built.items():
        table = sim.store.table(api_name)
        for rec in recs:
            table[rec["_id"]] = rec
    result: dict[str, Any] = {"ok": True, "ids": {k: [r["_id"] for r in v] for k, v in built.items()}}
    if payload.get("demo"):
        demo = payload["demo"]
        if isinstance(demo, bool) or not isinstance(demo, int) or demo < 0:
            raise HTTPException(400, "demo must be a non-negative integer")
        result["demo"] = generate_demo(sim.store, sim.config, demo, payload.get("base_time_ms"))
    return result


@router.get("/records/{api_name}")
def records(request: Request, api_name: str) -> list[dict[str, Any]]:
    sim = _sim(request)
    obj = OBJECTS.get(api_name)
    if obj is None:
        raise HTTPException(404, f"unknown object {api_name!r}; known: {sorted(OBJECTS)}")
    return [sim.store.render(obj, r) for r in sim.store.table(api_name).values()]


@router.post("/approve")
def approve(request: Request, payload: dict[str, Any] = Body(default_factory=dict)) -> dict[str, Any]:
    """Finish the approval of records in ``under_review`` / ``ineffective``: ``pass`` → ``normal``, ``reject`` →
    ``ineffective``; their detail rows follow. Body ``{"object": apiName, "ids": [...], "result": "pass"}``."""
    sim = _sim(request)
    obj = OBJECTS.get(payload.get("object"))
    ids, result = payload.get("ids"), payload.get("result", "pass")
    if obj is None or not isinstance(ids, list) or not ids or result not in ("pass", "reject") \
            or set(payload) - {"object", "ids", "result"}:
        raise HTTPException(400, 'body must be {"object": apiName, "ids": [record ids], "result": "pass"|"reject"}')
    table = sim.store.table(obj.api_name)
    missing = [i for i in ids if i not in table]
    waiting = [i for i in ids if i in table and table[i].get("life_status") not in ("under_review", "ineffective")]
    if missing or waiting:
        raise HTTPException(409, f"{obj.api_name}: not found {missing}; not in approval {waiting}")
    now = sim.clock.now_ms()
    state = "normal" if result == "pass" else "ineffective"
    changed = []
    for rid in ids:
        rows = [table[rid]]
        for api in DETAILS.get(obj.api_name, ()):
            master_field = OBJECTS[api].master_field
            rows += [r for r in sim.store.table(api).values() if r.get(master_field) == rid]
        for rec in rows:
            rec["life_status"], rec["lock_status"] = state, "0"
            if sim.switches.approval_touches:
                rec["last_modified_time"] = now
                rec["version"] = str(int(rec.get("version", "0")) + 1)
        changed.append(rid)
    return {"ok": True, "life_status": state, "ids": changed}


@router.post("/faults")
def set_faults(request: Request, profile: dict[str, Any] = Body(default_factory=dict)) -> dict[str, Any]:
    sim = _sim(request)
    try:
        sim.faults = Faults(profile, sim.clock, sim.config.enterprise_account)
    except FaultProfileError as exc:
        raise HTTPException(400, str(exc)) from None
    return {"ok": True, "faults": sim.faults.profile}


@router.get("/faults")
def get_faults(request: Request) -> dict[str, Any]:
    faults = _sim(request).faults
    return {"faults": faults.profile, "quota_left": faults.quota_left}


@router.get("/stats")
def stats(request: Request) -> dict[str, Any]:
    return _sim(request).stats.as_json()


@router.post("/expire")
def expire(request: Request) -> dict[str, Any]:
    _sim(request).tokens.expire_all()
    return {"ok": True}


@router.get("/clock")
def get_clock(request: Request) -> dict[str, Any]:
    clock = _sim(request).clock
    return {"now_ms": clock.now_ms(), "offset_s": clock.offset_s}


@router.post("/clock")
def move_clock(request: Request, payload: dict[str, Any] = Body(default_factory=dict)) -> dict[str, Any]:
    """``{"advance_s": N}`` moves the clock forward (or back, if negative); ``{"set_ms": T}`` sets it."""
    clock = _sim(request).clock
    if set(payload) - {"advance_s", "set_ms"} or not payload:
        raise HTTPException(400, 'body must be {"advance_s": seconds} or {"set_ms": epoch_ms}')
    try:
        if "set_ms" in payload:
            clock.set_ms(int(payload["set_ms"]))
        if "advance_s" in payload:
            clock.advance(float(payload["advance_s"]))
    except (TypeError, ValueError):
        raise HTTPException(400, "advance_s and set_ms must be numbers") from None
    return {"now_ms": clock.now_ms(), "offset_s": clock.offset_s}


@router.get("/messages")
def messages(request: Request) -> list[dict[str, Any]]:
    return list(_sim(request).store.messages)


@router.get("/config")
def get_config(request: Request) -> dict[str, Any]:
    return _sim(request).switches.as_json()


@router.post("/config")
def set_config(request: Request, payload: dict[str, Any] = Body(default_factory=dict)) -> dict[str, Any]:
    """Set switches (README "Switches") until the next reset; an unknown switch or a bad value is HTTP 400."""
    sim = _sim(request)
    try:
        sim.switches = sim.switches.updated(**payload)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    return sim.switches.as_json()

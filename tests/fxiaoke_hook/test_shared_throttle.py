"""The per-path call window shared by the deployment's task processes through the audit database.

The simulator enforces the gateway's limit when its fault profile says so (``rate_limit_per_20s``: a sliding
window per path → 30004, the real gateway's rule of spec §6.3). Processes that each kept their own window sent
N × the limit; with the shared window every call of every process is accepted and the gateway's own count
never goes over. Unit tests drive the window with an injected clock on a real SQLite or PostgreSQL database.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from fxiaoke_hook.helpers import GET, FakeClock, calls, seed_accounts
from fxiaoke_hook.task_processes import run_tasks, task_env, task_script
from fxiaoke_k3cloud.audit import AuditStore
from fxiaoke_k3cloud.audit.schema import sync_call_window
from fxiaoke_k3cloud.audit.throttle import SharedCallWindow
from fxiaoke_k3cloud.hooks.fxiaoke_throttle import (
    DEFAULT_CALLS_PER_20S,
    LEASE_S,
    MAX_BATCH,
    SHARED_HOLD_S,
    DeploymentThrottle,
    SlidingWindowThrottle,
)

WALL_START = 1_800_000_000.0  # the shared window stores wall-clock times
GATEWAY = {"rate_limit_per_20s": 100}  # the real gateway: 100 calls / 20 s per path

TASK = task_script(
    """
    hook = FxiaokeHook(retry_wait_s=0, max_attempts=1)  # a refusal (30004) fails the process: none is hidden
    hook.settings
    hook.get_token()  # the token before the start line: the test is about the data path
    """,
    """
    started = time.time()
    for _ in range(int(sys.argv[3])):
        hook.get_record("AccountObj", sys.argv[2])
    throttle = hook._transport.throttle
    print("RESULT " + json.dumps({"calls": hook.calls.by_path.get("/cgi/crm/v2/data/get", 0),
                                  "grants": getattr(throttle, "grants", None), "started": started,
                                  "ended": time.time()}))
    """,
)


@pytest.fixture
def engine(audit_url: str) -> Iterator[sa.Engine]:
    engine = AuditStore(audit_url).engine
    yield engine
    engine.dispose()


def _throttle(engine: sa.Engine, wall: FakeClock, limit: int) -> DeploymentThrottle:
    """One "process": its own window object and local fallback on the shared database."""
    window = SharedCallWindow(engine, hold_s=SHARED_HOLD_S, lease_s=LEASE_S, wall=wall)
    local = SlidingWindowThrottle(limit, 20.5, clock=wall, sleep=wall.sleep)
    return DeploymentThrottle("https://fx|FSAID_1", limit, lambda: window, local, wall=wall, sleep=wall.sleep)


# --- the window itself, injected clock, real database ------------------------------------------------------
def test_two_processes_share_one_window_per_path(engine):
    wall = FakeClock(WALL_START)
    first, second = SharedCallWindow(engine, hold_s=21, lease_s=0.5, wall=wall), SharedCallWindow(
        engine, hold_s=21, lease_s=0.5, wall=wall)

    assert first.grant("k", "/q", 5, 3) == [wall.now] * 3
    assert second.grant("k", "/q", 5, 8) == [wall.now] * 2  # the window's two last free slots, not 8
    start = wall.now
    wall.now += 4
    assert second.grant("k", "/q", 5, 2) == [start + 21, start + 21]  # full: the next slots are in the future
    assert first.grant("other", "/q", 5, 1) == [wall.now]  # another path has its own window


def test_a_slot_given_back_is_free_again_at_once(engine):
    wall = FakeClock(WALL_START)
    window = SharedCallWindow(engine, hold_s=21, lease_s=0.5, wall=wall)
    slots = window.grant("k", "/q", 2, 2)
    wall.now += 1
    assert window.grant("k", "/q", 2, 1, give_back=slots[1:]) == [wall.now]
    assert window.grant("k", "/q", 2, 1) == [slots[0] + 21]  # the slot that was used still counts


def test_calls_from_several_processes_never_exceed_the_limit_in_any_window(engine):
    wall = FakeClock(WALL_START)
    limit = 10
    processes = [_throttle(engine, wall, limit) for _ in range(3)]
    sent: list[float] = []
    for i in range(90):  # the processes take turns, each making calls 0.1 s apart
        processes[i % 3].acquire("/cgi/crm/v2/data/get")
        sent.append(wall.now)
        wall.now += 0.1
    # No 20 s window (as the gateway counts, at the call's time) holds more than the limit.
    assert max(sum(1 for t in sent if s <= t < s + 20.0) for s in sent) <= limit
    assert sent[-1] - sent[0] >= 8 * 20.0  # and the rate is the limit: 90 calls took 8 more windows


def test_a_busy_process_takes_slots_in_batches_and_a_slow_one_one_at_a_time(engine):
    wall = FakeClock(WALL_START)
    busy = _throttle(engine, wall, DEFAULT_CALLS_PER_20S)
    for _ in range(60):
        busy.acquire("/q")
        wall.now += 0.01
    assert busy.grants <= 60 // MAX_BATCH + 4  # 1, 2, 4, 8, 8, … slots per transaction

    slow = _throttle(engine, wall, DEFAULT_CALLS_PER_20S)
    for _ in range(6):
        slow.acquire("/slow")
        wall.now += 2 * LEASE_S  # slower than the lease: batches shrink back to one slot
    rows = _granted(engine)
    assert len(rows["/slow"]) <= 6 + 2  # the unused slots were given back, not left to block others


def test_unused_slots_are_given_back_when_the_process_ends(engine):
    wall = FakeClock(WALL_START)
    throttle = _throttle(engine, wall, 100)
    for _ in range(8):
        throttle.acquire("/q")
    assert len(_granted(engine)["/q"]) > 8  # the last batch is not used up
    throttle.release()
    assert len(_granted(engine)["/q"]) == 8


def test_without_the_database_the_process_throttles_on_its_own(engine):
    wall = FakeClock(WALL_START)

    def broken() -> SharedCallWindow:
        raise sa.exc.OperationalError("connect", {}, Exception("audit database down"))

    local = SlidingWindowThrottle(2, 20.5, clock=wall, sleep=wall.sleep)
    throttle = DeploymentThrottle("s", 2, broken, local, wall=wall, sleep=wall.sleep)
    assert [throttle.acquire("/q") for _ in range(3)] == [0.0, 0.0, 20.5]


def _granted(engine: sa.Engine) -> dict[str, list[float]]:
    with engine.connect() as conn:
        return {row.path: json.loads(row.granted) for row in conn.execute(sa.select(sync_call_window))}


# --- task processes against the simulator's gateway limit, over HTTP ---------------------------------------
def _run(n: int, record_id: str, per_process: int, env: dict[str, str], tmp_path: Path) -> list[dict]:
    return run_tasks(TASK, n, [record_id, str(per_process)], env, tmp_path)


def _env(fxiaoke, audit_url: str | None) -> dict[str, str]:
    return task_env(fxiaoke, audit_url)


def test_processes_sharing_the_window_are_never_refused_by_the_gateway(fxiaoke, audit_url, tmp_path):
    # 4 processes × 30 calls on one path at the default (100 / 20 s, the real limit): 120 calls, so the last
    # ones must wait for the window to slide; the simulator refuses any call over 100 in 20 s with 30004.
    (record_id,) = seed_accounts(fxiaoke, 1)
    fxiaoke.faults(GATEWAY)
    results = _run(4, record_id, 30, _env(fxiaoke, audit_url), tmp_path)

    assert [r["rc"] for r in results] == [0] * 4, [r["out"] for r in results if r["rc"]]
    assert sum(r["calls"] for r in results) == 120 == calls(fxiaoke, GET)  # none refused, none replayed
    span = max(r["ended"] for r in results) - min(r["started"] for r in results)
    assert span >= 20.0  # 120 calls cannot fit one window: the throttle held the last 20 for it to slide
    assert sum(r["grants"] for r in results) < 120  # slots were taken several per database transaction


def test_processes_each_with_their_own_window_are_refused(fxiaoke, tmp_path):
    """The same load without an audit store (each process its own window): the gateway refuses calls.

    This is why the window is shared, and the proof that the simulator counts as the gateway does.
    """
    (record_id,) = seed_accounts(fxiaoke, 1)
    fxiaoke.faults(GATEWAY)
    results = _run(4, record_id, 30, _env(fxiaoke, None), tmp_path)

    assert any(r["rc"] != 0 and "30004" in r["out"] for r in results)

"""One corpAccessToken for the deployment: task processes share it through the audit database.

Every test starts real processes (as Celery task processes are) that use FxiaokeHook against the simulator
over HTTP; the token calls are counted by the simulator. The simulator's token endpoint has its real limit
(10 calls a minute, ``token_calls_per_min``), so a process that fetched its own token would be refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from cryptography.fernet import Fernet

from fxiaoke_hook.helpers import GET, TOKEN, calls, seed_accounts
from fxiaoke_hook.task_processes import run_tasks, task_env, task_script
from fxiaoke_k3cloud.audit import AuditStore
from fxiaoke_k3cloud.audit.schema import sync_api_token
from fxiaoke_k3cloud.audit.tokens import SharedTokenStore, token_key
from fxiaoke_k3cloud.hooks.fxiaoke_token import fresh_enough
from simproc import FX

REAL_TOKEN_LIMIT = {"token_calls_per_min": 10}

TASK = task_script(
    """
    hook = FxiaokeHook(retry_wait_s=0)
    hook.settings  # connection read before the start line
    """,
    """
    record = hook.get_record("AccountObj", sys.argv[2])
    print("RESULT " + json.dumps({"id": record["_id"], "token_calls": hook.calls.by_path.get(
        "/cgi/corpAccessToken/get/V2", 0)}))
    """,
)


@pytest.fixture
def fernet_key() -> str:
    return Fernet.generate_key().decode()


def _run_tasks(n: int, record_id: str, *, env: dict[str, str], tmp_path: Path) -> list[dict]:
    """Start ``n`` processes, release them at once, return what each reports (every one must succeed)."""
    results = run_tasks(TASK, n, [record_id], env, tmp_path)
    for result in results:
        assert result["rc"] == 0 and result["reported"], result["out"]
    return results


def _env(fxiaoke, audit_url: str, fernet_key: str) -> dict[str, str]:
    return task_env(fxiaoke, audit_url, AIRFLOW__CORE__FERNET_KEY=fernet_key)


def _row(audit_url: str) -> sa.Row:
    engine = AuditStore(audit_url).engine
    try:
        with engine.connect() as conn:
            (row,) = conn.execute(sa.select(sync_api_token)).all()
            return row
    finally:
        engine.dispose()


def test_task_processes_fetch_one_token_and_none_is_refused(fxiaoke, audit_url, fernet_key, tmp_path):
    # More processes than the endpoint allows calls a minute (on PostgreSQL, the Celery deployment's store;
    # fewer on SQLite to spare the CI machine: interpreters with Airflow take seconds each to start).
    n = 12 if audit_url.startswith("postgresql") else 4
    (record_id,) = seed_accounts(fxiaoke, 1)
    fxiaoke.faults(REAL_TOKEN_LIMIT)

    results = _run_tasks(n, record_id, env=_env(fxiaoke, audit_url, fernet_key), tmp_path=tmp_path)

    assert [r["id"] for r in results] == [record_id] * n
    assert calls(fxiaoke, TOKEN) == 1  # one token call for the deployment: the others read it from the store
    assert sum(r["token_calls"] for r in results) == 1
    assert calls(fxiaoke, GET) == n  # and no data call was replayed after a refusal


def test_the_stored_token_is_encrypted_with_the_fernet_key_and_works(fxiaoke, audit_url, fernet_key, tmp_path):
    (record_id,) = seed_accounts(fxiaoke, 1)
    _run_tasks(1, record_id, env=_env(fxiaoke, audit_url, fernet_key), tmp_path=tmp_path)

    row = _row(audit_url)
    token = Fernet(fernet_key.encode()).decrypt(row.token_encrypted.encode()).decode()
    stored_text = " ".join(str(v) for v in row)
    assert token not in stored_text
    for secret in (FX["app_secret"], FX["permanent_code"]):
        assert secret not in stored_text
    assert row.token_key == token_key(fxiaoke.base_url, FX["app_id"], FX["permanent_code"])
    assert 7000 <= (row.expires_at - row.issued_at).total_seconds() <= 7200
    # The stored token is the one the server issued: a data call with it succeeds.
    answer = requests.post(f"{fxiaoke.base_url}/cgi/user/get", timeout=10, json={
        "corpAccessToken": token, "corpId": FX["corp_id"], "openUserId": FX["open_user_id"]}).json()
    assert answer["errorCode"] == 0


def test_a_refused_token_is_renewed_once_for_every_process(fxiaoke, audit_url, fernet_key, tmp_path):
    (record_id,) = seed_accounts(fxiaoke, 1)
    fxiaoke.faults(REAL_TOKEN_LIMIT)
    env = _env(fxiaoke, audit_url, fernet_key)
    _run_tasks(1, record_id, env=env, tmp_path=tmp_path)
    fxiaoke.expire()  # the server forgets every token: the stored one now answers 20016

    results = _run_tasks(4, record_id, env=env, tmp_path=tmp_path)

    assert [r["id"] for r in results] == [record_id] * 4
    assert calls(fxiaoke, TOKEN) == 2  # the first token, and one renewal shared by the four processes


def test_without_a_fernet_key_no_token_is_stored_but_the_budget_is_shared(audit_url):
    """Each process then fetches its own token; the calls of all of them still count against one budget."""
    from airflow.sdk.crypto import _NullFernet

    engine = AuditStore(audit_url).engine
    now, slept, fetched = [1_000_000.0], [], []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    def fetch() -> tuple[str, str, float]:
        fetched.append(now[0])
        return f"TOKEN{len(fetched)}", "corp", 7200.0

    # Two "processes" (two stores on one database) with a budget of 2 calls a minute.
    first, second = (SharedTokenStore(engine, _NullFernet(), calls_per_minute=2, wall=lambda: now[0], sleep=sleep)
                     for _ in range(2))
    first.get("k", "app", fetch, fresh=fresh_enough)
    now[0] += 1
    second.get("k", "app", fetch, fresh=fresh_enough)
    now[0] += 1
    first.get("k", "app", fetch, fresh=fresh_enough)

    assert len(fetched) == 3 and slept == [pytest.approx(58.0)]  # the third call waited for the window
    assert _row(audit_url).token_encrypted is None
    engine.dispose()

"""One K3Cloud session for the deployment (hooks/k3cloud_session.py): hooks (one per task) that share it through
the audit store, counted by the simulator over HTTP — logins, logouts, live sessions."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from simproc import k3cloud_conn

from fxiaoke_k3cloud.audit import AuditStore
from fxiaoke_k3cloud.audit.schema import sync_api_token
from fxiaoke_k3cloud.audit.tokens import forget_stores
from fxiaoke_k3cloud.hooks.k3cloud_filter import F

from .helpers import calls, make_hook, seed_customers


def _forget_fernets() -> None:
    from airflow.models import crypto as models_crypto
    from airflow.sdk import crypto

    for module in (crypto, models_crypto):
        if hasattr(getattr(module, "get_fernet", None), "cache_clear"):
            module.get_fernet.cache_clear()


@pytest.fixture
def deployment(tmp_path, monkeypatch):
    """An audit store and a Fernet key, as every component of a deployment has."""
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    AuditStore(url).migrate()
    monkeypatch.setenv("SYNC_AUDIT_URL", url)
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())
    _forget_fernets()
    forget_stores()
    yield url
    forget_stores()
    monkeypatch.undo()
    _forget_fernets()


def _task(numbers: list[str]) -> None:
    """What a task does: its own hook, a read, close() at the end."""
    with make_hook() as hook:
        got = [r["FNumber"] for page in hook.execute_bill_query("BD_Customer", ["FNumber"],
                                                                  F("FNumber").isin(numbers)) for r in page]
        assert got == numbers


def test_tasks_share_one_session_and_never_log_it_out(k3cloud, deployment):
    numbers = seed_customers(k3cloud, 3)
    for _ in range(3):
        _task(numbers)
    assert calls(k3cloud, "ValidateUser") == 1 and calls(k3cloud, "Logout") == 0
    assert k3cloud.stats()["sessions"]["live"] == 1
    with sa.create_engine(deployment).connect() as conn:  # kept encrypted: no session id in clear
        stored = conn.execute(sa.select(sync_api_token.c.token_encrypted, sync_api_token.c.app_id)).all()
    assert [r.app_id for r in stored] == ["k3cloud-session"] and stored[0].token_encrypted.startswith("gAAAA")


def test_a_session_the_server_lost_is_renewed_once_and_the_call_replayed(k3cloud, deployment):
    numbers = seed_customers(k3cloud, 3)
    _task(numbers)
    k3cloud.expire()  # the server forgets every session (idle timeout, restart)
    _task(numbers)
    _task(numbers)
    assert calls(k3cloud, "ValidateUser") == 2 and calls(k3cloud, "ExecuteBillQuery") == 4  # one refused, replayed


def test_a_session_unused_for_longer_than_session_reuse_s_is_not_tried(k3cloud, deployment):
    numbers = seed_customers(k3cloud, 3)
    _task(numbers)
    with sa.create_engine(deployment).begin() as conn:  # its last use an hour ago
        conn.execute(sa.update(sync_api_token).values(expires_at=datetime.now(timezone.utc) - timedelta(hours=1)))
    _task(numbers)
    assert calls(k3cloud, "ValidateUser") == 2 and calls(k3cloud, "ExecuteBillQuery") == 2  # no refused call


@pytest.mark.parametrize("extra", [{"share_session": False}, {}], ids=["share_session-false", "no-fernet-key"])
def test_without_sharing_each_task_logs_in_and_out(k3cloud, deployment, monkeypatch, extra):
    if extra:
        monkeypatch.setenv("AIRFLOW_CONN_K3CLOUD_DEFAULT", k3cloud_conn(k3cloud, **extra))
    else:
        monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", "")  # no key: a NullFernet, nothing stored
        _forget_fernets()
        forget_stores()
    numbers = seed_customers(k3cloud, 2)
    _task(numbers)
    _task(numbers)
    assert calls(k3cloud, "ValidateUser") == 2 == calls(k3cloud, "Logout")
    assert k3cloud.stats()["sessions"]["live"] == 0

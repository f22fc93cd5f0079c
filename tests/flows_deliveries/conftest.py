from __future__ import annotations

import pytest

from .world import World


@pytest.fixture
def store(tmp_path, monkeypatch):
    """An audit store on a temp SQLite file, found by the steps through $SYNC_AUDIT_URL."""
    from fxiaoke_k3cloud.audit import AuditStore

    monkeypatch.setenv("SYNC_AUDIT_URL", f"sqlite:///{tmp_path}/audit.db")
    store = AuditStore.from_airflow()
    store.migrate()
    return store


@pytest.fixture
def world(k3cloud, fxiaoke, store):
    from fxiaoke_k3cloud.hooks.fxiaoke_throttle import clear_shared_throttles
    from fxiaoke_k3cloud.hooks.fxiaoke_token import clear_process_caches

    # Process-wide client state (token cache and its per-minute token throttle, the 80 calls / 20 s per-path
    # throttle) would make a test wait for the calls of earlier ones: each test starts clean.
    clear_process_caches()
    clear_shared_throttles()
    yield World(k3cloud, fxiaoke, store)
    clear_process_caches()
    clear_shared_throttles()

"""Reliability tests: both simulators (session-scoped, reset per test), chaos connections, a temp audit store."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from .chaos import clear_client_caches, connections


@pytest.fixture
def chaos_world(k3cloud, fxiaoke, tmp_path, monkeypatch):
    """Simulators reset, connections with a 1 s read timeout, a fresh SQLite audit store, clean client caches."""
    from fxiaoke_k3cloud.audit import AuditStore

    for name, value in connections(fxiaoke, k3cloud).items():
        monkeypatch.setenv(name, value)
    url = f"sqlite:///{tmp_path}/audit.db"
    monkeypatch.setenv("SYNC_AUDIT_URL", url)
    store = AuditStore(url)
    store.migrate()
    clear_client_caches()
    yield SimpleNamespace(fx=fxiaoke, k3=k3cloud, store=store)
    clear_client_caches()
    store.dispose()

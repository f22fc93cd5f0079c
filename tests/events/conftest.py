from __future__ import annotations

import pytest


@pytest.fixture
def store(tmp_path, monkeypatch):
    """An audit store on a temp SQLite file, found by the watchers through $SYNC_AUDIT_URL."""
    from fxiaoke_k3cloud.audit import AuditStore

    monkeypatch.setenv("SYNC_AUDIT_URL", f"sqlite:///{tmp_path}/audit.db")
    store = AuditStore.from_airflow()
    store.migrate()
    return store

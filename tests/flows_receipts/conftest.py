"""Receipts flow tests: both simulators over HTTP, the audit store on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from .world import ReceiptWorld

AUDIT_BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=AUDIT_BACKENDS)
def store(request, tmp_path, monkeypatch):
    """A fresh audit store, found by the steps through $SYNC_AUDIT_URL."""
    from fxiaoke_k3cloud.audit import AuditStore

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/audit.db"
    else:
        server = request.getfixturevalue("pg_server")
        url = server.new_database()
        request.addfinalizer(lambda: server.drop_database(url))
    monkeypatch.setenv("SYNC_AUDIT_URL", url)
    s = AuditStore(url)
    s.migrate()
    yield s
    s.dispose()


@pytest.fixture
def world(k3cloud, fxiaoke, store):
    from fxiaoke_k3cloud.hooks.fxiaoke_throttle import clear_shared_throttles
    from fxiaoke_k3cloud.hooks.fxiaoke_token import clear_process_caches

    clear_process_caches()  # each test starts with no cached token / throttle of earlier tests
    clear_shared_throttles()
    yield ReceiptWorld(k3cloud, fxiaoke, store)
    clear_process_caches()
    clear_shared_throttles()

"""Every test starts with empty process-wide caches (tokens, resolved user ids, throttle windows); ``audit_url``
is a migrated audit store on SQLite and on PostgreSQL for the tests that share state through it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fxiaoke_k3cloud.audit import AuditStore
from fxiaoke_k3cloud.hooks.fxiaoke_throttle import clear_shared_throttles
from fxiaoke_k3cloud.hooks.fxiaoke_token import clear_process_caches


@pytest.fixture(autouse=True)
def _clean_process_caches():
    clear_process_caches()
    clear_shared_throttles()
    yield
    clear_process_caches()
    clear_shared_throttles()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def audit_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'audit.db'}"
        AuditStore(url).migrate()
        yield url
        return
    server = request.getfixturevalue("pg_server")
    url = server.new_database()
    AuditStore(url).migrate()
    yield url
    server.drop_database(url)

"""Fixtures of the operations tests: a filled audit store on SQLite (temp file) and on PostgreSQL.

PostgreSQL is the test server of ``tests/pgserver.py``; its case skips when the server is unreachable,
except under ``CI=true``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from .fill import Filled, fill

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
TABLES = ("sync_record", "sync_run", "id_map", "watermark", "parked")


@pytest.fixture(scope="session")
def ops_pg_url() -> Iterator[str]:
    """A migrated database on the test Postgres server, emptied by each test that uses it."""
    from pgserver import PG_ADMIN_URL, PgServer

    from fxiaoke_k3cloud.audit import AuditStore

    server = PgServer(PG_ADMIN_URL)
    problem = server.reachable()
    if problem:
        server.admin.dispose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL unreachable ({problem}); CI=true requires it", pytrace=False)
        pytest.skip(f"PostgreSQL unreachable ({problem})")
    url = server.create_database("ops")
    store = AuditStore(url)
    store.migrate()
    store.dispose()
    yield url
    server.close()


@pytest.fixture(params=BACKENDS)
def audit_url(request: pytest.FixtureRequest, tmp_path, monkeypatch) -> str:  # type: ignore[no-untyped-def]
    """URL of an empty, migrated audit store; ``$SYNC_AUDIT_URL`` points at it."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'audit.db'}"
    else:
        url = request.getfixturevalue("ops_pg_url")
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        engine.dispose()
    monkeypatch.setenv("SYNC_AUDIT_URL", url)
    return url


@pytest.fixture
def filled(audit_url: str) -> Iterator[Filled]:
    """The store of ``fill.py``: a clean and a partial customers run, an orders run with parked records."""
    data = fill(audit_url)
    yield data
    data.store.dispose()


@pytest.fixture
def sqlite_filled(tmp_path, monkeypatch) -> Iterator[Filled]:  # type: ignore[no-untyped-def]
    """The same data on SQLite only (tests whose subject is not the database)."""
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    monkeypatch.setenv("SYNC_AUDIT_URL", url)
    data = fill(url)
    yield data
    data.store.dispose()

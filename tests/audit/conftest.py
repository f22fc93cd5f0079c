"""Fixtures: every audit-store behaviour runs on SQLite (a temp file) and on PostgreSQL.

PostgreSQL is the server at 127.0.0.1:5432 (user postgres, trust auth; override the admin URL with
``SYNC_AUDIT_TEST_PG_ADMIN_URL``). A database ``sync_audit_test_<pid>`` is created for the session
and dropped at the end; tests that need an empty schema get their own ``…_<pid>_<n>`` database.
If the server is unreachable the Postgres cases skip, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from .audit_helpers import FakeClock
from fxiaoke_k3cloud.audit import AuditStore
from pgserver import PgServer

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
ALL_TABLES = ("sync_record", "sync_run", "id_map", "watermark", "parked", "sync_claim")


@pytest.fixture(scope="session")
def pg_session_url(pg_server: PgServer) -> str:
    """The session database, migrated once; tests empty it before use (see ``store``)."""
    url = pg_server.create_database()
    store = AuditStore(url)
    store.migrate()
    store.dispose()
    return url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def empty_url(backend: str, request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """URL of a database with no tables at all."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'audit.db'}"
        return
    server: PgServer = request.getfixturevalue("pg_server")
    url = server.new_database()
    yield url
    server.drop_database(url)


@pytest.fixture
def store_url(backend: str, request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """URL of a migrated, empty audit store."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'audit.db'}"
        AuditStore(url).migrate()
        return url
    url = request.getfixturevalue("pg_session_url")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {', '.join(ALL_TABLES)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def store(store_url: str, clock: FakeClock) -> Iterator[AuditStore]:
    s = AuditStore(store_url, clock=clock)
    yield s
    s.dispose()

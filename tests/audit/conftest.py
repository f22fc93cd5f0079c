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

PG_ADMIN_URL = os.environ.get(
    "SYNC_AUDIT_TEST_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
ALL_TABLES = ("sync_record", "sync_run", "id_map", "watermark", "parked")


class PgServer:
    """Creates and drops throw-away databases on the test server."""

    def __init__(self, admin_url: str) -> None:
        self.admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
        self.base = sa.make_url(admin_url)
        self._names = itertools.count(1)
        self.created: list[str] = []

    def reachable(self) -> str | None:
        """None when the server answers, else the reason it does not."""
        try:
            with self.admin.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 — any failure means "not reachable", reported verbatim
            return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        return None

    def create_database(self, suffix: str | None = None) -> str:
        name = f"sync_audit_test_{os.getpid()}" + (f"_{suffix}" if suffix else "")
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return self.base.set(database=name).render_as_string(hide_password=False)

    def new_database(self) -> str:
        return self.create_database(str(next(self._names)))

    def drop_database(self, url: str) -> None:
        name = sa.make_url(url).database
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if name in self.created:
            self.created.remove(name)

    def close(self) -> None:
        with self.admin.connect() as conn:
            for name in list(self.created):
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.created.clear()
        self.admin.dispose()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    server = PgServer(PG_ADMIN_URL)
    problem = server.reachable()
    if problem:
        server.admin.dispose()
        message = f"PostgreSQL at {server.base.render_as_string(hide_password=True)} unreachable ({problem})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI=true requires the Postgres audit-store tests to run", pytrace=False)
        pytest.skip(f"{message}; start it or set SYNC_AUDIT_TEST_PG_ADMIN_URL")
    yield server
    server.close()


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

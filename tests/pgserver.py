"""Throw-away PostgreSQL databases for tests (server at 127.0.0.1:5432, user postgres, trust auth)."""

from __future__ import annotations

import itertools
import os

import sqlalchemy as sa

PG_ADMIN_URL = os.environ.get(
    "SYNC_AUDIT_TEST_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)


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

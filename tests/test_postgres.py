"""PostgreSQL is reachable for the audit-store paths (mandatory when CI=true)."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


def test_postgres_answers_and_supports_what_the_audit_store_uses():
    engine = sa.create_engine(PG_URL, pool_pre_ping=True)
    try:
        with engine.connect() as conn:
            version = conn.execute(sa.text("select current_setting('server_version_num')::int")).scalar_one()
            # ON CONFLICT upserts (9.5+) and advisory locks are what the audit store relies on.
            assert version >= 120000
            assert conn.execute(sa.text("select pg_try_advisory_lock(4242)")).scalar_one() is True
            conn.execute(sa.text("select pg_advisory_unlock(4242)"))
    except sa.exc.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL must be reachable in CI at {PG_URL}: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {exc}")
    finally:
        engine.dispose()

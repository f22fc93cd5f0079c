"""One CeleryExecutor deployment for the module (see deployment.py); skipped without redis-server or
PostgreSQL, except under CI=true, where they are required (.ci/run installs redis-server)."""

from __future__ import annotations

import os
import shutil
import signal
import sys
from collections.abc import Iterator

import pytest

from .deployment import REDIS_SERVER, Deployment

SEED_CUSTOMERS = 12
# The Fxiaoke token endpoint's real limit (spec §2.1: about 10 calls a minute per app).
REAL_TOKEN_LIMIT = {"token_calls_per_min": 10}


@pytest.fixture(scope="module")
def deployment(pg_server) -> Iterator[Deployment]:  # type: ignore[no-untyped-def]
    if not (shutil.which("redis-server") or os.path.exists(REDIS_SERVER)):
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is required under CI=true (.ci/run installs it)", pytrace=False)
        pytest.skip("redis-server not installed (apt-get install redis-server)")
    # A SIGTERM (CI timeout, kill) must still run the teardown, or the deployment outlives the test run.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    dep = Deployment(seed_customers=SEED_CUSTOMERS, fx_faults=REAL_TOKEN_LIMIT)
    try:
        dep.start()
        yield dep
    finally:
        dep.stop()
        signal.signal(signal.SIGTERM, previous)

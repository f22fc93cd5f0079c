"""Test setup: a throw-away AIRFLOW_HOME (set before anything imports airflow) and simulator fixtures."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_HOME = tempfile.mkdtemp(prefix="af-home-")
os.environ["AIRFLOW_HOME"] = _HOME
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME}/airflow.db"
os.environ.setdefault("SIM_LOG_DIR", _HOME)
sys.path.insert(0, str(ROOT / "plugins"))
sys.path.insert(0, str(ROOT / "tests"))

import pytest  # noqa: E402

from simproc import FX, K3, SimulatorProcess, fxiaoke_conn, k3cloud_conn  # noqa: E402,F401

@pytest.fixture(scope="session")
def k3cloud_sim():
    sim = SimulatorProcess("k3cloud").start()
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def fxiaoke_sim():
    sim = SimulatorProcess("fxiaoke").start()
    yield sim
    sim.stop()


@pytest.fixture
def k3cloud(k3cloud_sim, monkeypatch):
    """The K3Cloud simulator, reset, with ``k3cloud_default`` pointing at it (password login)."""
    k3cloud_sim.reset()
    monkeypatch.setenv("AIRFLOW_CONN_K3CLOUD_DEFAULT", k3cloud_conn(k3cloud_sim))
    yield k3cloud_sim
    k3cloud_sim.faults({})


@pytest.fixture
def fxiaoke(fxiaoke_sim, monkeypatch):
    """The Fxiaoke simulator, reset, with ``fxiaoke_default`` pointing at it."""
    fxiaoke_sim.reset()
    monkeypatch.setenv("AIRFLOW_CONN_FXIAOKE_DEFAULT", fxiaoke_conn(fxiaoke_sim))
    yield fxiaoke_sim
    fxiaoke_sim.faults({})


@pytest.fixture(scope="session")
def pg_server():
    from pgserver import PG_ADMIN_URL, PgServer

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

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

from simproc import SimulatorProcess  # noqa: E402

# Development defaults of the simulators (simulators/README.md); not secrets.
FX = {
    "app_id": "FSAID_131b579",
    "app_secret": "sim-app-secret-0123456789abcdef",
    "permanent_code": "SIMPERMANENTCODE0123456789ABCDEF",
    "corp_id": "FSCID_00000000000000000000000000C0FFEE",
    "open_user_id": "FSUID_0000000000000000000000000000A001",
    "mobile": "13800000000",
}
K3 = {
    "acct_id": "65a1b2c3d4e5f6",
    "username": "apiuser",
    "password": "sim-k3-password",
    "app_id": "123456_AQIGAFMFDg9aBlNRV1dSXlMCCldUAVML",
    "app_secret": "00112233445566778899aabbccddeeff",
    "lcid": 2052,
}


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


def k3cloud_conn(sim: SimulatorProcess, auth_mode: str = "password", **extra) -> str:
    return json.dumps(
        {
            "conn_type": "k3cloud",
            "host": f"{sim.base_url}/k3cloud/",
            "login": K3["username"],
            "password": K3["password"],
            "extra": {
                "acct_id": K3["acct_id"],
                "auth_mode": auth_mode,
                "app_id": K3["app_id"],
                "app_secret": K3["app_secret"],
                "lcid": K3["lcid"],
                "org_number": "100",
                "timeout": 10,
                **extra,
            },
        }
    )


def fxiaoke_conn(sim: SimulatorProcess, **extra) -> str:
    return json.dumps(
        {
            "conn_type": "fxiaoke",
            "host": sim.base_url,
            "login": FX["app_id"],
            "password": FX["app_secret"],
            "extra": {"permanent_code": FX["permanent_code"], "open_user_id": FX["open_user_id"], "timeout": 10, **extra},
        }
    )

"""`make airflow`'s connections live in the metadata DB: one saved through Airflow's REST API (the UI's own
calls) is the one the hooks use, the launcher never overwrites it, and the Test button explains a failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import stack  # noqa: E402


def script_env() -> dict[str, str]:
    """The launcher's subprocess sees this session's metadata DB and Fernet key."""
    from airflow.configuration import conf

    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT)]),
            "AIRFLOW__CORE__FERNET_KEY": conf.get("core", "fernet_key", fallback="")}


@pytest.fixture(scope="module")
def api() -> Iterator[tuple[TestClient, dict]]:
    """Airflow's api-server app in-process with connection testing on, and an admin's bearer header."""
    from airflow.settings import engine
    from airflow.utils import db

    if not sa.inspect(engine).has_table("revoked_token"):
        db.resetdb()
    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))
    yield TestClient(create_app("core")), {"Authorization": f"Bearer {token}"}


@pytest.fixture
def db_connections(api, monkeypatch, k3cloud_sim, fxiaoke_sim) -> Iterator[dict[str, str]]:
    """No AIRFLOW_CONN_* variables; the simulator connections created in the DB as `make airflow` does."""
    client, auth = api
    for conn_id in ("fxiaoke_default", "k3cloud_default"):
        monkeypatch.delenv(f"AIRFLOW_CONN_{conn_id.upper()}", raising=False)
        client.delete(f"/api/v2/connections/{conn_id}", headers=auth)
    monkeypatch.setenv("AIRFLOW__CORE__TEST_CONNECTION", "Enabled")
    # Read connections as the api-server and the task's Execution API do: env vars, then the metadata DB.
    monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", "server")
    k3cloud_sim.reset()
    done = stack.ensure_connections(script_env(), stack.sim_connections(fxiaoke_sim.base_url, k3cloud_sim.base_url))
    yield done
    for conn_id in ("fxiaoke_default", "k3cloud_default"):
        client.delete(f"/api/v2/connections/{conn_id}", headers=auth)


def test_make_airflow_environment_sets_no_connection_variables_and_enables_testing() -> None:
    env = stack.airflow_env("http://127.0.0.1:1", "http://127.0.0.1:2", connections_in_env=False)
    assert not [k for k in env if k.startswith("AIRFLOW_CONN_") and k.endswith("_DEFAULT")]
    assert env["AIRFLOW__CORE__TEST_CONNECTION"] == "Enabled"
    assert env["AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES"] == "permanent_code,app_secret,acct_id"


def test_one_sensitive_names_list_in_readme_make_airflow_and_compose() -> None:
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    env = compose["x-airflow-common"]["environment"]
    assert env["AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES"] == stack.SENSITIVE_VAR_CONN_NAMES
    assert env["AIRFLOW__CORE__TEST_CONNECTION"] == "Enabled"
    assert f"SENSITIVE_VAR_CONN_NAMES={stack.SENSITIVE_VAR_CONN_NAMES}" in (ROOT / "README.md").read_text()


def test_compose_gives_production_no_simulator_connection_and_keeps_simulators_in_the_demo_profile() -> None:
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    env = compose["x-airflow-common"]["environment"]
    assert not [k for k in env if k in ("AIRFLOW_CONN_FXIAOKE_DEFAULT", "AIRFLOW_CONN_K3CLOUD_DEFAULT")]
    production = {n for n, s in compose["services"].items() if not s.get("profiles")}
    assert not {"fxiaoke-sim", "k3cloud-sim", "demo-connections"} & production
    for name in ("fxiaoke-sim", "k3cloud-sim", "demo-connections"):
        assert compose["services"][name]["profiles"] == ["demo"]
    assert "-sim:" not in json.dumps({n: compose["services"][n] for n in production if n.startswith("airflow-")})


def test_connection_saved_through_the_rest_api_is_used_and_never_overwritten(api, db_connections) -> None:
    from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook

    client, auth = api
    assert db_connections == {"fxiaoke_default": "created", "k3cloud_default": "created"}
    ok, message = K3CloudHook().test_connection()
    assert ok, message

    # A user edits the password in the UI (the UI sends this PATCH).
    r = client.patch("/api/v2/connections/k3cloud_default", headers=auth, params={"update_mask": "password"},
                     json={"connection_id": "k3cloud_default", "conn_type": "k3cloud", "password": "typo"})
    assert r.status_code == 200, r.text
    again = stack.ensure_connections(script_env(), stack.sim_connections("http://x", "http://y"))
    assert again == {"fxiaoke_default": "kept", "k3cloud_default": "kept"}, "the launcher overwrote a saved one"
    ok, message = K3CloudHook().test_connection()
    assert not ok and "password" in message and "login" in message, message  # the edit is what runs now
    assert "65a1b2c3d4e5f6" not in message  # acct_id is sensitive


@pytest.fixture
def masked_names(monkeypatch) -> Iterator[None]:
    """This process's masker configured with the list `make airflow` sets (it is read at start-up)."""
    from airflow import settings

    monkeypatch.setenv("AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES", stack.SENSITIVE_VAR_CONN_NAMES)
    settings._configure_secrets_masker()
    yield
    monkeypatch.delenv("AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES")
    settings._configure_secrets_masker()


def test_test_button_says_what_to_fix_and_masks_acct_id(api, db_connections, masked_names) -> None:
    client, auth = api
    shown = client.get("/api/v2/connections/k3cloud_default", headers=auth).json()
    assert "65a1b2c3d4e5f6" not in json.dumps(shown), shown  # acct_id masked in the UI like the password
    assert json.loads(shown["extra"])["auth_mode"] == "password"  # the others are shown
    body = {"connection_id": "k3cloud_default", "conn_type": "k3cloud", "host": "http://127.0.0.1:9/k3cloud/",
            "login": "apiuser", "password": "x", "extra": json.dumps({"acct_id": "a1"})}
    r = client.post("/api/v2/connections/test", headers=auth, json=body)
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["status"] is False
    assert "check the host of connection" in result["message"], result["message"]


def test_fxiaoke_test_button_names_the_credential_to_fix(api, db_connections, fxiaoke_sim) -> None:
    client, auth = api
    conn = stack.sim_connections(fxiaoke_sim.base_url, "")["fxiaoke_default"]
    body = {"connection_id": "fxiaoke_default", "conn_type": "fxiaoke", "host": conn["host"], "login": conn["login"],
            "password": "wrong-secret", "extra": json.dumps(conn["extra"])}
    result = client.post("/api/v2/connections/test", headers=auth, json=body).json()
    assert result["status"] is False
    assert "app secret" in result["message"], result["message"]


def test_make_airflow_help_starts_nothing(tmp_path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "local_airflow.py"), "--help"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "AIRFLOW_PORT" in proc.stdout and "18801" in proc.stdout and "18802" in proc.stdout
    assert "Simulators:" not in proc.stdout


def test_make_airflow_on_a_taken_port_says_so_and_starts_nothing(tmp_path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "local_airflow.py"), "--port", str(port)],
                              capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert f"Port {port} is taken" in proc.stderr and "AIRFLOW_PORT=" in proc.stderr
    assert "Simulators:" not in proc.stdout


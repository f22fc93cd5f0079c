"""Secrets through Airflow's real task runner: ``airflow standalone`` (scheduler with LocalExecutor, dag-processor,
api-server, triggerer) runs the customers DAG against simulators started with distinctive credentials; then every
task log file, the XCom table of the metadata DB, every audit-store table, the CRM messages and the Airflow
processes' own output are searched for the credential values. ``dag.test()`` and ``airflow dags test`` do not go
through the task runner's secret masker, so only a run like this one shows what a deployment would write.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from simproc import FX, K3, SimulatorProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
DAG_ID = "fxiaoke_customers_to_k3cloud"
RUN_ID = "manual__secrets_real_runner"
SECRETS = {"fx_app_secret": "FXSECRET-2c5e81-narwhal", "fx_permanent_code": "PERMCODE-8a3f10-ibex",
           "k3_password": "K3PASS-40d7be-tapir", "k3_app_secret": "K3APPSECRET-e19c2a-dugong"}
DEMO_CUSTOMERS = 5
READY_TIMEOUT_S = 90.0
RUN_TIMEOUT_S = 180.0


def _airflow_env(home: Path, fx: SimulatorProcess, k3: SimulatorProcess, audit_url: str, port: int) -> dict[str, str]:
    """A clean environment: nothing of the test session's Airflow settings (unit-test mode, its home) leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SYNC_AUDIT"))}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES": "permanent_code,app_secret",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT)]),
        "SYNC_AUDIT_URL": audit_url,
        "SYNC_K3_LOAD_POOL_SLOTS": "2",  # the pools below have 2 slots: a load task asking for more never starts
        "AIRFLOW_CONN_FXIAOKE_DEFAULT": json.dumps({
            "conn_type": "fxiaoke", "host": fx.base_url, "login": FX["app_id"], "password": SECRETS["fx_app_secret"],
            "extra": {"permanent_code": SECRETS["fx_permanent_code"], "open_user_id": FX["open_user_id"],
                      "timeout": 10}}),
        "AIRFLOW_CONN_K3CLOUD_DEFAULT": json.dumps({
            "conn_type": "k3cloud", "host": f"{k3.base_url}/k3cloud/", "login": K3["username"],
            "password": SECRETS["k3_password"],
            "extra": {"acct_id": K3["acct_id"], "app_id": K3["app_id"], "app_secret": SECRETS["k3_app_secret"],
                      "lcid": 2052, "org_number": "100", "timeout": 10}}),
    })
    return env


def _airflow(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(VENV_BIN / "airflow"), *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, f"airflow {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def _query(db: Path, sql: str, *params: Any) -> list[tuple]:
    with sqlite3.connect(db, timeout=10) as conn:
        return conn.execute(sql, params).fetchall()


def _wait(what: str, check, timeout: float, proc: subprocess.Popen, out_path: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"airflow standalone exited ({proc.returncode}) while waiting for {what}:\n"
                        f"{out_path.read_text(errors='replace')[-4000:]}")
        try:
            value = check()
        except (sqlite3.OperationalError, requests.RequestException):
            value = None
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; output:\n{out_path.read_text(errors='replace')[-4000:]}")


def _processes_of(home: Path) -> list[int]:
    """Pids of live processes whose environment carries this AIRFLOW_HOME (ours, whatever their process group)."""
    marker = f"AIRFLOW_HOME={home}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def _stop(proc: subprocess.Popen, home: Path) -> list[int]:
    """SIGTERM the process group, SIGKILL what is left; returns pids that escaped the group (then killed)."""
    for sig, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            continue
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:  # children of the group may outlive its leader for a moment
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            continue
        break
    escaped = _processes_of(home)
    for pid in escaped:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return escaped


@pytest.fixture
def secret_stack(tmp_path) -> Iterator[dict[str, Any]]:
    fx = SimulatorProcess("fxiaoke", "--app-secret", SECRETS["fx_app_secret"],
                          "--permanent-code", SECRETS["fx_permanent_code"]).start()
    k3 = SimulatorProcess("k3cloud", "--password", SECRETS["k3_password"], "--app-secret", SECRETS["k3_app_secret"]).start()
    try:
        yield {"fx": fx, "k3": k3, "home": tmp_path / "airflow", "audit_db": tmp_path / "audit.db"}
    finally:
        fx.stop(), k3.stop()


def test_no_secret_in_task_logs_xcom_audit_store_or_messages_under_the_real_task_runner(secret_stack):
    started = time.monotonic()
    fx, k3, home, audit_db = (secret_stack[k] for k in ("fx", "k3", "home", "audit_db"))
    home.mkdir()
    fx.seed({"demo": DEMO_CUSTOMERS})
    port = free_port()
    env = _airflow_env(home, fx, k3, f"sqlite:///{audit_db}", port)
    metadata = home / "airflow.db"
    _airflow(env, "db", "migrate")
    pools = home / "pools.json"
    pools.write_text(json.dumps({name: {"slots": 2, "description": name, "include_deferred": False}
                                 for name in ("fxiaoke_api", "k3cloud_api")}))
    _airflow(env, "pools", "import", str(pools))

    out_path = home / "standalone.out"
    with open(out_path, "w") as out:
        proc = subprocess.Popen([str(VENV_BIN / "airflow"), "standalone"], env=env, cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    escaped: list[int] = []
    try:
        _wait("the DAG to be parsed", lambda: _query(metadata, "SELECT 1 FROM serialized_dag WHERE dag_id = ?", DAG_ID),
              READY_TIMEOUT_S, proc, out_path)
        _airflow(env, "dags", "trigger", DAG_ID, "-r", RUN_ID, "-c", json.dumps({"full_resync": True}))
        _airflow(env, "dags", "unpause", DAG_ID)
        state = _wait("the run to finish", lambda: next(
            (s for (s,) in _query(metadata, "SELECT state FROM dag_run WHERE run_id = ?", RUN_ID)
             if s in ("success", "failed")), None), RUN_TIMEOUT_S, proc, out_path)
    finally:
        escaped = _stop(proc, home)
    elapsed = time.monotonic() - started
    tasks = dict(_query(metadata, "SELECT task_id, state FROM task_instance WHERE run_id = ?", RUN_ID))
    assert state == "success", f"the run must succeed for the search to mean anything: {tasks}"
    assert escaped == [], f"processes outlived the process group: {escaped}"
    assert len(k3.records("BD_Customer")) == DEMO_CUSTOMERS

    texts: dict[str, str] = {}
    log_files = [p for p in (home / "logs").rglob("*") if p.is_file()]
    task_logs = [p for p in log_files if f"dag_id={DAG_ID}" in str(p)]
    assert {p.parent.name for p in task_logs} >= {f"task_id={t}" for t in
                                                   ("extract_customers", "transform_customers", "load_customers", "report")}
    for path in log_files:
        texts[str(path.relative_to(home))] = path.read_text(errors="replace")
    assert sum(len(texts[str(p.relative_to(home))]) for p in task_logs) > 2000, "task logs must have content"
    # Positive control: the logs do carry what the hooks log around the credentials (login user, the connection).
    load_logs = "".join(texts[str(p.relative_to(home))] for p in task_logs if "task_id=load_customers" in str(p))
    assert f"as {K3['username']}" in load_logs, "the load task's log must show the K3Cloud login"
    texts["standalone output"] = out_path.read_text(errors="replace")
    xcom = _query(metadata, "SELECT * FROM xcom")
    assert len(xcom) >= 4, "each task pushed its return value"
    texts["metadata:xcom"] = "\n".join(repr(r) for r in xcom)
    with sqlite3.connect(audit_db) as conn:
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            rows = conn.execute(f'SELECT * FROM "{table}"').fetchall()
            texts[f"audit:{table}"] = "\n".join(repr(r) for r in rows)
    assert texts["audit:sync_record"], "the run must have audited its records"
    texts["crm messages"] = json.dumps(fx._admin("GET", "messages"), ensure_ascii=False)

    hits = sorted({(name, key) for name, text in texts.items() for key, value in SECRETS.items() if value in text})
    assert hits == [], f"secrets found: {hits}"
    print(f"\nreal runner: {elapsed:.0f} s, {len(task_logs)} task log files, {len(texts)} texts searched")

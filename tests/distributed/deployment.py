"""A real CeleryExecutor deployment as child processes, no Docker: the compose file's shape on one machine.

Redis (Debian's ``redis-server``) on a free port; PostgreSQL (127.0.0.1:5432) with fresh databases for
Airflow's metadata and the audit store; api-server, scheduler, dag-processor, triggerer and two
``airflow celery worker`` processes with distinct hostnames; both simulators. The provider comes in as the
installed distribution (its entry points), the plugins folder is empty, connections are ``AIRFLOW_CONN_*``
variables and the pools are set by ``airflow pools set`` as the compose file's ``airflow-init`` does.

Every child starts in its own process group; :meth:`Deployment.stop` ends each group (SIGTERM, then
SIGKILL), and runs whatever happened during start or the tests.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
from cryptography.fernet import Fernet

from pgserver import PG_ADMIN_URL, PgServer
from simproc import FX, K3, SimulatorProcess, free_port

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
VENV_BIN = Path(sys.executable).parent
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
WORKERS = ("worker-a", "worker-b")
POOLS = {"fxiaoke_api": 4, "k3cloud_api": 4}  # as docker-compose.yaml's airflow-init sets them


class Deployment:
    """Start with :meth:`start`, always :meth:`stop` (a ``finally`` or a fixture's teardown)."""

    def __init__(self, *, seed_customers: int, fx_faults: dict[str, Any] | None = None) -> None:
        self.seed_customers = seed_customers
        self.fx_faults = fx_faults or {}
        self.home = Path(tempfile.mkdtemp(prefix="af-celery-"))
        self.logs = self.home / "proc-logs"
        self.logs.mkdir()
        self.procs: dict[str, subprocess.Popen] = {}
        self.pg = PgServer(PG_ADMIN_URL)
        self.fx = SimulatorProcess("fxiaoke", "--seed-demo", str(seed_customers))
        self.k3 = SimulatorProcess("k3cloud")
        self.api_port = free_port()
        self.api = f"http://127.0.0.1:{self.api_port}"
        self.http = requests.Session()
        self.env: dict[str, str] = {}

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "Deployment":
        self.fx.start()
        self.k3.start()
        if self.fx_faults:
            self.fx.faults(self.fx_faults)
        redis_port = free_port()
        self._spawn("redis", [REDIS_SERVER, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", str(self.home)])
        airflow_db = self.pg.create_database("af_meta")
        audit_db = self.pg.create_database("af_audit")
        self.env = self._environment(airflow_db, audit_db, redis_port)
        self._run(["airflow", "db", "migrate"])
        for name, slots in POOLS.items():
            self._run(["airflow", "pools", "set", name, str(slots), f"{name} (as docker-compose.yaml)"])
        self._run([sys.executable, "-m", "fxiaoke_k3cloud", "migrate"])
        self._spawn("api-server", ["airflow", "api-server", "--host", "127.0.0.1", "--port", str(self.api_port)])
        self._spawn("scheduler", ["airflow", "scheduler"])
        self._spawn("dag-processor", ["airflow", "dag-processor"])
        self._spawn("triggerer", ["airflow", "triggerer", "--skip-serve-logs"])
        for name in WORKERS:
            self._spawn(name, ["airflow", "celery", "worker", "--celery-hostname", f"{name}@%h", "--concurrency", "2",
                               "--skip-serve-logs"], extra_env={"SYNC_TEST_WORKER_NAME": name})
        self._wait_healthy()
        return self

    def stop(self) -> None:
        _stop_groups(list(self.procs.values()))
        self.fx.stop()
        self.k3.stop()
        self.http.close()
        try:
            self.pg.close()  # drops the two databases
        except Exception:  # noqa: BLE001 — a cleanup failure must not hide the test's own result
            pass
        shutil.rmtree(self.home, ignore_errors=True)  # failures quote the logs they need (log_tail)

    def _environment(self, airflow_db: str, audit_db: str, redis_port: int) -> dict[str, str]:
        plugins = self.home / "plugins"
        plugins.mkdir()
        pg_meta = airflow_db.replace("postgresql+psycopg2://", "postgresql://", 1)
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SYNC_AUDIT"))},
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_db,
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{pg_meta}",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__API_AUTH__JWT_SECRET": Fernet.generate_key().decode(),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api}/execution/",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins),  # empty: the provider is an installed distribution
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES": "permanent_code,app_secret,acct_id",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "distributed.hostname.worker_name",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "300",
            "SYNC_MAPPINGS_DIR": str(ROOT / "include" / "mappings"),
            # test_celery_stack shrinks k3cloud_api to 1 slot while the DAGs run: a load task holding more slots
            # (dag_factory.LOAD_POOL_SLOTS, 4 by default) would never start in a pool of 1.
            "SYNC_K3_LOAD_POOL_SLOTS": "1",
            "AIRFLOW_CONN_SYNC_AUDIT": audit_db.replace("postgresql+psycopg2://", "postgresql://", 1),
            "AIRFLOW_CONN_FXIAOKE_DEFAULT": json.dumps({
                "conn_type": "fxiaoke", "host": self.fx.base_url, "login": FX["app_id"], "password": FX["app_secret"],
                "extra": {"permanent_code": FX["permanent_code"], "open_user_id": FX["open_user_id"]}}),
            "AIRFLOW_CONN_K3CLOUD_DEFAULT": json.dumps({
                "conn_type": "k3cloud", "host": f"{self.k3.base_url}/k3cloud/", "login": K3["username"],
                "password": K3["password"],
                "extra": {"acct_id": K3["acct_id"], "auth_mode": "password", "lcid": 2052, "org_number": "100"}}),
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            # This checkout's code first (the installed distribution's entry points name the same modules);
            # tests/ for the hostname callable.
            "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT), str(TESTS)]),
        }

    def _spawn(self, name: str, cmd: list[str], extra_env: dict[str, str] | None = None) -> None:
        log = open(self.logs / f"{name}.log", "w")
        env = {**(self.env or os.environ), **(extra_env or {})}
        self.procs[name] = subprocess.Popen(cmd, env=env, cwd=self.home, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def _run(self, cmd: list[str]) -> None:
        done = subprocess.run(cmd, env=self.env, cwd=self.home, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")

    def _wait_healthy(self, timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        want = {"metadatabase", "scheduler", "triggerer", "dag_processor"}
        health: dict[str, Any] = {}
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited ({proc.returncode}):\n{self.log_tail(name)}")
            try:
                health = self.http.get(f"{self.api}/api/v2/monitor/health", timeout=5).json()
                if all((health.get(k) or {}).get("status") == "healthy" for k in want) and self._workers_up():
                    return
            except (requests.RequestException, ValueError):
                pass
            time.sleep(1)
        raise RuntimeError(f"deployment not healthy after {timeout:.0f}s: {health}\n{self.log_tail('scheduler')}")

    def _workers_up(self) -> bool:
        return all("ready." in (self.logs / f"{name}.log").read_text(errors="replace") for name in WORKERS)

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    # --- the REST API, as a user or a script would drive it ---------------------------------------
    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        r = self.http.request(method, f"{self.api}/api/v2/{path}", json=body, params=params or None, timeout=30,
                              headers=self._auth())
        if r.status_code >= 400:
            raise RuntimeError(f"{method} /api/v2/{path} → {r.status_code}: {r.text[:1000]}")
        return r.json() if r.content else None

    def _auth(self) -> dict[str, str]:
        if "Authorization" not in self.http.headers:
            r = self.http.get(f"{self.api}/auth/token", timeout=10)  # all-admins mode hands out a token
            if r.ok and "access_token" in r.json():
                self.http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        return {}

    def wait_for_dags(self, dag_ids: list[str], timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            have = {d["dag_id"] for d in self.call("GET", "dags", limit=100)["dags"]}
            if set(dag_ids) <= have:
                return
            time.sleep(1)
        raise RuntimeError(f"DAGs {sorted(set(dag_ids) - have)} not parsed after {timeout:.0f}s\n"
                           f"{self.log_tail('dag-processor')}")

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.call("GET", f"dags/{dag_id}/dagRuns", limit=100)["dag_runs"]

    def wait_runs_done(self, dag_ids: list[str], at_least: dict[str, int], timeout: float = 300.0) -> dict[str, list]:
        """Wait until each DAG has ``at_least`` runs and none is queued or running; return the runs."""
        deadline = time.monotonic() + timeout
        while True:
            runs = {d: self.runs(d) for d in dag_ids}
            settled = all(len(runs[d]) >= at_least.get(d, 1) and all(
                r["state"] in ("success", "failed") for r in runs[d]) for d in dag_ids)
            if settled:
                return runs
            if time.monotonic() > deadline:
                states = {d: [(r["dag_run_id"], r["state"]) for r in runs[d]] for d in dag_ids}
                raise AssertionError(f"runs not done after {timeout:.0f}s: {states}")
            time.sleep(2)

    def failed_task_logs(self, chars: int = 2500) -> str:
        """Tails of the task logs that hold an error (for assertion messages: the home is removed on stop)."""
        paths = [p for p in sorted((self.home / "logs").rglob("*.log")) if '"level":"error"' in
                 p.read_text(errors="replace").replace(" ", "")]
        return "\n".join(f"== {p.relative_to(self.home)}\n{p.read_text(errors='replace')[-chars:]}" for p in paths[:3])

    def task_instances(self) -> list[dict[str, Any]]:
        return self.call("GET", "dags/~/dagRuns/~/taskInstances", limit=1000)["task_instances"]

    def task_log(self, ti: dict[str, Any]) -> str:
        try_number = ti.get("try_number") or 1
        r = self.http.get(f"{self.api}/api/v2/dags/{ti['dag_id']}/dagRuns/{ti['dag_run_id']}/taskInstances/"
                          f"{ti['task_id']}/logs/{try_number}", params={"full_content": "true"},
                          headers={"Accept": "text/plain"}, timeout=30)
        return r.text


def _stop_groups(procs: list[subprocess.Popen], grace: float = 10.0) -> None:
    """SIGTERM every child's process group, then SIGKILL what is left (task processes included)."""
    for proc in procs:
        _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for proc in procs:
        _signal_group(proc, signal.SIGKILL)  # also a group's stragglers after its leader exited
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass

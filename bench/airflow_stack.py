"""A real Airflow for the latency benchmark: api-server, scheduler (LocalExecutor), dag-processor and triggerer,
each its own process (so the triggerer can be restarted alone), on SQLite in a temp home, pointed at the
simulators. Everything it starts is in one process group per component and is stopped on exit.
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
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests

from tests.simproc import SimulatorProcess, fxiaoke_conn, free_port, k3cloud_conn

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
POOLS = ("fxiaoke_api", "k3cloud_api")
#: What the stack changes from Airflow's defaults to cut the scheduler's and the task start-ups' share of the
#: latency (README, *Latency*; docs/events.md, *Tuning*). ``--airflow-env`` of bench.latency overrides them.
LATENCY_SETTINGS = {
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
    # The scheduler sleeps this long after a loop with nothing to do (default 1 s): an asset event, a task that
    # ended, a run to start all wait for the next loop. 0.2 s: up to ~0.8 s less per hand-over, a few more idle
    # loops (cheap queries) a second.
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",
}


class AirflowStack:
    def __init__(self, home: Path, fx: SimulatorProcess, k3: SimulatorProcess, *, port: int, extra_env: dict[str, str]) -> None:
        self.home = home
        self.port = port
        self.procs: dict[str, subprocess.Popen] = {}
        self.audit_db = home / "sync_audit.db"
        self.metadata = home / "airflow.db"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SYNC_"))}
        env.update({
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.metadata}",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__WORKERS": "1",
            **LATENCY_SETTINGS,
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT)]),
            "SYNC_AUDIT_URL": f"sqlite:///{self.audit_db}",
            "AIRFLOW_CONN_FXIAOKE_DEFAULT": fxiaoke_conn(fx, timeout=30),
            "AIRFLOW_CONN_K3CLOUD_DEFAULT": k3cloud_conn(k3, timeout=30),
            **extra_env,
        })
        self.env = env

    # --- lifecycle ---------------------------------------------------------------------------------------------
    def airflow(self, *args: str) -> str:
        done = subprocess.run([str(VENV_BIN / "airflow"), *args], env=self.env, cwd=ROOT, capture_output=True,
                              text=True, timeout=180)
        if done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{done.stdout[-1500:]}\n{done.stderr[-3000:]}")
        return done.stdout

    def start(self) -> AirflowStack:
        self.home.mkdir(parents=True, exist_ok=True)
        self.airflow("db", "migrate")
        pools = self.home / "pools.json"
        pools.write_text(json.dumps({p: {"slots": 4, "description": p, "include_deferred": False} for p in POOLS}))
        self.airflow("pools", "import", str(pools))
        for name in COMPONENTS:
            self.start_component(name)
        self.wait("the api-server", self._api_up, 120)
        return self

    def start_component(self, name: str, command: str | None = None) -> None:
        log = open(self.home / f"{name}.log", "a")
        self.procs[name] = subprocess.Popen([str(VENV_BIN / "airflow"), command or name], env=self.env, cwd=ROOT,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def crash(self, name: str) -> None:
        """SIGKILL one component's process group (a crash: no graceful shutdown, its job row stays 'running')."""
        proc = self.procs.pop(name)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)

    def trigger_holder(self, classpath_part: str) -> int | None:
        rows = self.query("SELECT triggerer_id FROM trigger WHERE classpath LIKE ?", f"%{classpath_part}%")
        return rows[0][0] if rows else None

    def restart(self, name: str) -> float:
        """Stop one component (SIGTERM, then SIGKILL) and start it again; returns the seconds it was down."""
        started = time.monotonic()
        _stop_group(self.procs[name])
        self.start_component(name)
        return time.monotonic() - started

    def stop(self) -> None:
        for name in reversed(list(self.procs)):
            _stop_group(self.procs[name])

    def __enter__(self) -> AirflowStack:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # --- looking inside ---------------------------------------------------------------------------------------
    def _api_up(self) -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{self.port}/api/v2/monitor/health", timeout=2).ok
        except requests.RequestException:
            return False

    def query(self, sql: str, *params: Any, db: Path | None = None) -> list[tuple]:
        try:
            with sqlite3.connect(db or self.metadata, timeout=10) as conn:
                return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError:
            return []

    def wait(self, what: str, check, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"airflow {name} exited ({proc.returncode}) while waiting for {what}; "
                                       f"see {self.home / (name + '.log')}")
            value = check()
            if value:
                return value
            time.sleep(0.25)
        raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}; logs in {self.home}")

    def unpause(self, dag_id: str) -> None:
        self.wait(f"{dag_id} to be parsed", lambda: self.query("SELECT 1 FROM serialized_dag WHERE dag_id = ?", dag_id), 180)
        self.airflow("dags", "unpause", dag_id)

    def idle(self, dag_id: str) -> bool:
        return not self.query("SELECT 1 FROM dag_run WHERE dag_id = ? AND state IN ('queued', 'running')", dag_id)

    def runs(self, dag_id: str) -> dict[str, int]:
        return dict(self.query("SELECT run_type || ':' || state, COUNT(*) FROM dag_run WHERE dag_id = ? GROUP BY 1", dag_id))

    def timeline(self, dag_id: str, since_ms: int) -> dict[str, float]:
        """Where the time went after ``since_ms`` (an audit): seconds from it to the first asset event, to the
        first asset-triggered run's queued/running, and to each of its tasks' queued/start/end (metadata DB)."""
        def seconds(stamp: str | None) -> float | None:
            if not stamp:
                return None
            moment = datetime.fromisoformat(str(stamp)).replace(tzinfo=timezone.utc)
            return round(moment.timestamp() - since_ms / 1000, 3)

        since = datetime.fromtimestamp(since_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
        out: dict[str, float] = {}
        event = self.query("SELECT MIN(timestamp) FROM asset_event WHERE timestamp >= ?", since)
        if event and event[0][0]:
            out["asset_event"] = seconds(event[0][0])
        run = self.query("SELECT run_id, queued_at, start_date FROM dag_run WHERE dag_id = ? AND run_type = 'asset_triggered'"
                         " AND queued_at >= ? ORDER BY queued_at LIMIT 1", dag_id, since)
        if not run:
            return out
        out["run_queued"], out["run_running"] = seconds(run[0][1]), seconds(run[0][2])
        for task_id, queued, start, end in self.query(
                "SELECT task_id, queued_dttm, start_date, end_date FROM task_instance WHERE dag_id = ? AND run_id = ?",
                dag_id, run[0][0]):
            out.update({f"{task_id}.queued": seconds(queued), f"{task_id}.start": seconds(start), f"{task_id}.end": seconds(end)})
        return {k: v for k, v in out.items() if v is not None}

    def watcher_position(self, name: str) -> int | None:
        rows = self.query("SELECT value_ms FROM watermark WHERE flow = ?", f"watch:{name}", db=self.audit_db)
        return rows[0][0] if rows else None

    def watcher_polled(self, name: str) -> int | None:
        rows = self.query("SELECT value_ms FROM watermark WHERE flow = ?", f"watch:{name}:polled", db=self.audit_db)
        return rows[0][0] if rows else None


def _stop_group(proc: subprocess.Popen, grace: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def new_port() -> int:
    return free_port()

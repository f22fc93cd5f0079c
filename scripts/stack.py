"""Shared by `make demo` and `make airflow`: a project-local Airflow home and the two simulators.

Everything lives under ``.airflow/`` in the repository; nothing outside it is touched.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOME = ROOT / ".airflow"
VENV_BIN = Path(sys.executable).parent

# Development defaults of the simulators (simulators/README.md). Not secrets.
FX = {
    "app_id": "FSAID_131b579",
    "app_secret": "sim-app-secret-0123456789abcdef",
    "permanent_code": "SIMPERMANENTCODE0123456789ABCDEF",
    "open_user_id": "FSUID_0000000000000000000000000000A001",
}
K3 = {
    "acct_id": "65a1b2c3d4e5f6",
    "username": "apiuser",
    "password": "sim-k3-password",
    "app_id": "123456_AQIGAFMFDg9aBlNRV1dSXlMCCldUAVML",
    "app_secret": "00112233445566778899aabbccddeeff",
}


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def pick_port(preferred: int) -> int:
    if port_free(preferred):
        return preferred
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: Connection fields Airflow masks besides its defaults (password, secret, token, ...): one list for
#: `make airflow`, `make demo`, docker-compose.yaml and the README.
SENSITIVE_VAR_CONN_NAMES = "permanent_code,app_secret,acct_id"


def sim_connections(fx_url: str, k3_url: str) -> dict[str, dict]:
    """The two connections pointing at the simulators, as Airflow connection JSON."""
    return {
        "fxiaoke_default": {
            "conn_type": "fxiaoke",
            "host": fx_url,
            "login": FX["app_id"],
            "password": FX["app_secret"],
            "extra": {"permanent_code": FX["permanent_code"], "open_user_id": FX["open_user_id"]},
        },
        "k3cloud_default": {
            "conn_type": "k3cloud",
            "host": f"{k3_url}/k3cloud/",
            "login": K3["username"],
            "password": K3["password"],
            "extra": {"acct_id": K3["acct_id"], "auth_mode": "password", "lcid": 2052, "org_number": "100"},
        },
    }


def airflow_env(fx_url: str, k3_url: str, *, parallelism: int = 4, connections_in_env: bool = True) -> dict[str, str]:
    """Environment for every airflow command: local home, SQLite, connection testing on.

    :param connections_in_env: put the simulator connections in ``AIRFLOW_CONN_*`` variables (`make demo`,
        which never opens the UI). `make airflow` passes False and stores them in the metadata DB instead:
        an environment variable wins over the DB, so a connection saved in the UI would be silently ignored.
    """
    HOME.mkdir(exist_ok=True)
    env = dict(os.environ)
    for name in ("AIRFLOW_CONN_FXIAOKE_DEFAULT", "AIRFLOW_CONN_K3CLOUD_DEFAULT"):
        env.pop(name, None)  # a stray export from the shell would shadow the connections of this stack
    env.update(
        {
            "AIRFLOW_HOME": str(HOME),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": str(parallelism),
            "AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES": SENSITIVE_VAR_CONN_NAMES,
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{HOME}/airflow.db",
            "AIRFLOW__API__HOST": "127.0.0.1",
            # The laptop demo's audit store is the embedded SQLite file (audit/engine.py refuses it elsewhere).
            "SYNC_AUDIT_EMBEDDED": "1",
            "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT)]),
        }
    )
    if connections_in_env:
        for conn_id, conn in sim_connections(fx_url, k3_url).items():
            env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)
    return env


def ensure_connections(env: dict[str, str], connections: dict[str, dict]) -> dict[str, str]:
    """Create each connection in the metadata DB unless one with its id exists; ``{conn_id: created|kept}``."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "airflow_connections.py")],
        input=json.dumps(connections), env=env, cwd=ROOT, capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"could not create the Airflow connections:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


class Simulators:
    """Start both simulators as child processes; stop them on exit, whatever happens."""

    def __init__(self, seed_demo: int = 0, log_dir: Path = HOME) -> None:
        self.seed_demo = seed_demo
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []
        self.fx_url = self.k3_url = ""

    def __enter__(self) -> "Simulators":
        # A SIGTERM (a CI timeout, `kill`) must still run __exit__, or the simulators outlive us.
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
        self.log_dir.mkdir(exist_ok=True)
        fx_port, k3_port = pick_port(18801), pick_port(18802)
        self.fx_url, self.k3_url = f"http://127.0.0.1:{fx_port}", f"http://127.0.0.1:{k3_port}"
        for name, port in (("fxiaoke", fx_port), ("k3cloud", k3_port)):
            args = [sys.executable, "-m", f"simulators.{name}", "--host", "127.0.0.1", "--port", str(port)]
            if self.seed_demo:
                args += ["--seed-demo", str(self.seed_demo)]
            log = open(self.log_dir / f"sim-{name}.log", "w")
            self.procs.append(subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        for url, proc in zip((self.fx_url, self.k3_url), self.procs):
            wait_healthy(url, proc)
        return self

    def __exit__(self, *exc) -> None:
        for proc in self.procs:
            stop_process_group(proc)


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"simulator at {url} exited with code {proc.returncode}; see .airflow/sim-*.log")
        try:
            with urllib.request.urlopen(f"{url}/_sim/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"simulator at {url} not healthy after {timeout}s; see .airflow/sim-*.log")


def stop_process_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the whole process group, then SIGKILL what is left (Airflow children included)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)


def migrate_airflow_db(env: dict[str, str]) -> None:
    subprocess.run([str(VENV_BIN / "airflow"), "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)

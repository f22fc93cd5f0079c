"""Start a simulator as a real HTTP server in a subprocess, and drive its /_sim/ admin API."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SimulatorProcess:
    """One simulator (``simulators.fxiaoke`` or ``simulators.k3cloud``) running on 127.0.0.1."""

    def __init__(self, name: str, *args: str, port: int | None = None) -> None:
        self.name = name
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.args = list(args)
        self.proc: subprocess.Popen | None = None
        self.log_path = Path(os.environ.get("SIM_LOG_DIR", "/tmp")) / f"sim-{name}-{self.port}.log"
        self.http = requests.Session()

    def start(self, timeout: float = 30.0) -> "SimulatorProcess":
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", f"simulators.{self.name}", "--host", "127.0.0.1", "--port", str(self.port), *self.args],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"simulator {self.name} exited early; see {self.log_path}:\n{self.log_path.read_text()[-3000:]}")
            try:
                if self.http.get(f"{self.base_url}/_sim/health", timeout=1).ok:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"simulator {self.name} did not become healthy in {timeout}s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    # --- admin API -------------------------------------------------------------------------
    def _admin(self, method: str, path: str, body: Any = None) -> Any:
        r = self.http.request(method, f"{self.base_url}/_sim/{path}", json=body, timeout=30)
        r.raise_for_status()
        return r.json() if r.content else None

    def reset(self) -> None:
        self._admin("POST", "reset")

    def seed(self, payload: dict) -> Any:
        return self._admin("POST", "seed", payload)

    def records(self, name: str) -> list[dict]:
        return self._admin("GET", f"records/{name}")

    def faults(self, profile: dict | None = None) -> Any:
        return self._admin("POST", "faults", profile or {})

    def stats(self) -> dict:
        return self._admin("GET", "stats")

    def expire(self) -> Any:
        return self._admin("POST", "expire")


def conn_json(**fields: Any) -> str:
    return json.dumps(fields)


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

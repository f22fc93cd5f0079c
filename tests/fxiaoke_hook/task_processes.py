"""Task processes for the multi-process tests: real interpreters using FxiaokeHook, as Celery runs task processes.

Each process runs a script made by :func:`task_script`: its setup, then the start line (it touches
``<go>.ready.<pid>`` and waits for ``<go>``), then its body, which prints ``RESULT <json>``. :func:`run_tasks`
starts them, releases them together once every one is past its imports and setup, and returns what each printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from simproc import fxiaoke_conn

ROOT = Path(__file__).resolve().parents[2]

_PRELUDE = """\
import json, os, sys, time
from pathlib import Path
from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook
"""
_START_LINE = """\
Path(sys.argv[1] + ".ready." + str(os.getpid())).touch()
while not Path(sys.argv[1]).exists():
    time.sleep(0.005)
"""


def task_script(setup: str, body: str) -> str:
    """A task process's script: ``setup`` runs before the start line, ``body`` after it (arguments from sys.argv[2])."""
    return _PRELUDE + textwrap.dedent(setup) + _START_LINE + textwrap.dedent(body)


def task_env(fxiaoke: Any, audit_url: str | None, **extra: str) -> dict[str, str]:
    """A Celery task process's environment: this checkout, the simulator's connection, the audit store (or none)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT)]),
           "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor", "AIRFLOW_CONN_FXIAOKE_DEFAULT": fxiaoke_conn(fxiaoke), **extra}
    env.pop("SYNC_AUDIT_URL", None)
    if audit_url:
        env["SYNC_AUDIT_URL"] = audit_url
    return env


def run_tasks(script: str, n: int, args: list[str], env: dict[str, str], tmp_path: Path) -> list[dict[str, Any]]:
    """Start ``n`` processes, release them at once; each one's exit code, output tail and RESULT fields.

    ``reported`` says whether the process printed its RESULT line.
    """
    go = tmp_path / f"go-{time.monotonic_ns()}"
    procs = [subprocess.Popen([sys.executable, "-c", script, str(go), *args], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(n)]
    try:
        deadline = time.monotonic() + 120
        while len(list(tmp_path.glob(go.name + ".ready.*"))) < n and time.monotonic() < deadline:
            assert all(p.poll() is None for p in procs), "a task process died before the start line"
            time.sleep(0.1)
        go.touch()  # every process is past its imports and setup: they start together
        results = []
        for proc in procs:
            out, _ = proc.communicate(timeout=180)
            line = next((ln for ln in out.splitlines() if ln.startswith("RESULT ")), None)
            results.append({"rc": proc.returncode, "out": out[-3000:], "reported": line is not None,
                            **(json.loads(line.removeprefix("RESULT ")) if line else {})})
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()

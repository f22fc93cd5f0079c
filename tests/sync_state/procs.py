"""Run flows as separate Python processes at once, as two Celery workers or a backfill beside the schedule do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent


def start(flow: str, **kwargs: Any) -> subprocess.Popen:
    """Start ``flowrun.run_flow(flow, **kwargs)`` in a new process (environment of this test: connections,
    SYNC_AUDIT_URL, AIRFLOW_HOME)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(TESTS)])}
    return subprocess.Popen([sys.executable, "-m", "sync_state.flowrun", json.dumps({"flow": flow, **kwargs},
                                                                                    default=str)],
                            cwd=str(TESTS), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen, timeout: float = 240) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=timeout)
    line = next((ln for ln in reversed(out.splitlines()) if ln.startswith("RESULT ")), None)
    assert line is not None, f"flow process died (exit {proc.returncode}):\n{out[-4000:]}"
    return json.loads(line.removeprefix("RESULT "))


def run_together(*runs: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
    procs = [start(flow, **kwargs) for flow, kwargs in runs]
    try:
        return [finish(p) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()

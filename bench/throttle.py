"""What the shared Fxiaoke call window costs per API call: ``python -m bench.throttle [--calls 300]``.

One process makes ``--calls`` reads (``data/get``) against the Fxiaoke simulator (with ``--latency-ms`` added,
the bench's fast profile) three ways: no audit store (the process's own window), the shared window in SQLite,
and in PostgreSQL when ``$BENCH_PG_URL`` (or the test server at 127.0.0.1:5432) answers. Prints ms per call,
database transactions per call, and the difference from the process's own window.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from simproc import SimulatorProcess, fxiaoke_conn  # noqa: E402

PG_ADMIN = os.environ.get("BENCH_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")

CHILD = """
import json, sys, time
from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook
hook = FxiaokeHook(retry_wait_s=0, max_attempts=1)
hook.get_record("AccountObj", sys.argv[1])  # token, engine, migrations: before the clock
started = time.perf_counter()
for _ in range(int(sys.argv[2])):
    hook.get_record("AccountObj", sys.argv[1])
elapsed = time.perf_counter() - started
window, grant_ms = hook._transport.throttle._window(), []
for i in range(40 if window else 0):  # one window transaction on its own (a key no call uses)
    t = time.perf_counter()
    window.grant("bench-" + str(i % 4), "/bench", 100, 1)
    grant_ms.append((time.perf_counter() - t) * 1000)
print("RESULT " + json.dumps({"s": elapsed, "grants": getattr(hook._transport.throttle, "grants", 0),
                              "grant_ms": sorted(grant_ms)[len(grant_ms) // 2] if grant_ms else 0.0}))
"""


def _pg_url() -> str | None:
    import sqlalchemy as sa

    name = f"bench_throttle_{os.getpid()}"
    try:
        admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        admin.dispose()
    except Exception:  # noqa: BLE001 — no server: the PostgreSQL row is skipped
        return None
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def _run(sim: SimulatorProcess, record_id: str, calls: int, audit_url: str | None, home: Path) -> dict[str, Any]:
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW_CONN_FXIAOKE_DEFAULT": fxiaoke_conn(sim, calls_per_20s=100),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT)])}
    env.pop("SYNC_AUDIT_URL", None)
    if audit_url:
        env["SYNC_AUDIT_URL"] = audit_url
    out = subprocess.run([sys.executable, "-c", CHILD, record_id, str(calls)], env=env, capture_output=True,
                         text=True, timeout=600)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if out.returncode or not line:
        raise RuntimeError(out.stdout[-2000:] + out.stderr[-2000:])
    return json.loads(line.removeprefix("RESULT "))


def measure(calls: int = 95, latency_ms: int = 20) -> dict[str, Any]:
    """ms per call and transactions per call for each store; ``calls`` ≤ 99 stays inside one window."""
    sim = SimulatorProcess("fxiaoke").start()
    try:
        sim.faults({"latency_ms": latency_ms})
        record_id = sim.seed({"objects": {"AccountObj": [{"name": "THROTTLE-BENCH"}]}})["ids"]["AccountObj"][0]
        with tempfile.TemporaryDirectory(prefix="bench-throttle-") as tmp:
            stores = {"process": None, "sqlite": f"sqlite:///{Path(tmp) / 'audit.db'}", "postgresql": _pg_url()}
            rows: dict[str, Any] = {}
            for name, url in stores.items():
                if name != "process" and url is None:
                    continue
                result = _run(sim, record_id, calls, url, Path(tmp) / "home")
                rows[name] = {"ms_per_call": round(result["s"] * 1000 / calls, 2),
                              "transactions_per_call": round(result["grants"] / calls, 3),
                              "transaction_ms": round(result["grant_ms"], 2),
                              "window_ms_per_call": round(result["grant_ms"] * result["grants"] / calls, 2)}
    finally:
        sim.stop()
    base = rows["process"]["ms_per_call"]
    for row in rows.values():
        row["extra_ms_per_call"] = round(row["ms_per_call"] - base, 2)
    return {"calls": calls, "latency_ms": latency_ms, "stores": rows}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.throttle", description=__doc__)
    p.add_argument("--calls", type=int, default=95, help="calls per store (≤ 99 stays inside one 20 s window)")
    p.add_argument("--latency-ms", type=int, default=20)
    args = p.parse_args(argv)
    result = measure(args.calls, args.latency_ms)
    for name, row in result["stores"].items():
        print(f"{name:>10}: {row['ms_per_call']:.2f} ms/call ({row['extra_ms_per_call']:+.2f}), "
              f"{row['transactions_per_call']:.3f} window transactions per call × {row['transaction_ms']:.2f} ms "
              f"(median) = {row['window_ms_per_call']:.2f} ms/call spent on the shared window")


if __name__ == "__main__":
    main()

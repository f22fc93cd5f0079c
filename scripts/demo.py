"""`make demo`: start the simulators, run every flow DAG end to end with `airflow dags test`, print what moved.

Runs on the embedded default: SQLite for Airflow's metadata and the audit store, both under .airflow/.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time

from stack import HOME, ROOT, VENV_BIN, Simulators, airflow_env, migrate_airflow_db

# In the order the business needs them: customers before orders and contacts, orders before deliveries.
FLOWS = [
    ("fxiaoke_customers_to_k3cloud", "Fxiaoke customers (AccountObj) → K3Cloud BD_Customer"),
    ("fxiaoke_orders_to_k3cloud", "Fxiaoke sales orders → K3Cloud SAL_SaleOrder"),
    ("fxiaoke_contacts_to_k3cloud", "Fxiaoke contacts (ContactObj) → K3Cloud BD_CommonContact"),
    ("k3cloud_deliveries_to_fxiaoke", "K3Cloud audited delivery notices → Fxiaoke"),
    ("k3cloud_receipts_to_fxiaoke", "K3Cloud audited receipt bills → Fxiaoke payments"),
]


def run_dag(dag_id: str, env: dict[str, str], log_path, conf: str | None = None) -> tuple[int, float]:
    started = time.monotonic()
    cmd = [str(VENV_BIN / "airflow"), "dags", "test", dag_id] + (["-c", conf] if conf else [])
    with open(log_path, "w") as log:
        rc = subprocess.run(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT).returncode
    return rc, time.monotonic() - started


# Airflow's structlog lines and the standard library's "LEVEL:logger:message" lines.
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\S+ \[|(DEBUG|INFO|WARNING|ERROR):[\w.]+:)")


def run_quietly(cmd: list[str], env: dict[str, str], log_path=None) -> int:
    """Run a helper command; show its own output, not the libraries' log lines (kept in ``log_path``)."""
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if log_path is not None:
        log_path.write_text(proc.stdout + proc.stderr, encoding="utf-8")
    for line in (proc.stdout + proc.stderr).splitlines():
        if not LOG_LINE.match(line) and not line.startswith("Audit store: "):
            print(line)
    return proc.returncode


def print_audit_summary(env: dict[str, str]) -> None:
    """Print the audit store's view of the runs (what moved), if the audit store exists yet."""
    code = (
        "from fxiaoke_k3cloud.cli import main; import sys; sys.exit(main(['report', '--all-flows', '--last', '10']))"
    )
    try:
        import fxiaoke_k3cloud.cli  # noqa: F401
    except ImportError:
        print("(the audit report is not built yet)")
        return
    run_quietly([sys.executable, "-c", code], env, HOME / "demo-logs" / "report.log")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=int(os.environ.get("DEMO_CUSTOMERS", "300")),
                        help="demo customers the CRM simulator generates (each with orders)")
    args = parser.parse_args()

    # Fresh simulators hold fresh data, so the audit store (id map, watermarks) starts fresh too.
    for stale in ("sync_audit.db", "sync_audit.db-wal", "sync_audit.db-shm", "demo-logs"):
        path = HOME / stale
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    logs = HOME / "demo-logs"
    logs.mkdir(parents=True)

    present = [(d, t) for d, t in FLOWS if (ROOT / "dags" / f"{d}.py").exists()]
    missing = [d for d, _ in FLOWS if (ROOT / "dags" / f"{d}.py").exists() is False]
    print(f"Demo: {args.customers} CRM customers with orders, simulators on 127.0.0.1, Airflow home {HOME}")
    if missing:
        print("Not built yet (skipped): " + ", ".join(missing))
    if not present:
        print("No flow DAG exists yet. The simulators start and stop; nothing else to run.")

    failures = 0
    with Simulators(seed_demo=args.customers) as sims:
        env = airflow_env(sims.fx_url, sims.k3_url)
        print(f"Simulators: Fxiaoke {sims.fx_url}  K3Cloud {sims.k3_url}")
        print("Preparing Airflow metadata DB (SQLite)…", flush=True)
        migrate_airflow_db(env)
        # The initial load of a new installation is a full resync; the second pass over the same data
        # shows idempotency: every record is "unchanged" and nothing is written.
        initial = '{"full_resync": true}'
        runs = [(d, t, 1, initial) for d, t in present]
        if present and present[0][0] == FLOWS[0][0]:
            runs.insert(1, (FLOWS[0][0], FLOWS[0][1] + " — again, same data: expect no writes", 2, initial))
        for dag_id, title, attempt, conf in runs:
            if dag_id == "k3cloud_deliveries_to_fxiaoke":
                print("\n▶ Meanwhile in K3Cloud: a user audits orders and ships them (delivery notices, audited)")
                run_quietly([sys.executable, str(ROOT / "scripts" / "demo_k3_user.py"), "--count",
                             str(max(1, args.customers // 10))], env, logs / "k3cloud-user.log")
                # The notices were audited a moment ago, after the last complete 15-minute interval:
                # a manual run up to now picks them up (as the next scheduled run would).
                conf = '{"until": "%d"}' % ((time.time() + 60) * 1000)
            if dag_id == "k3cloud_receipts_to_fxiaoke":
                print("\n▶ Meanwhile in K3Cloud: a cashier receives money for shipped orders (receipt bills, audited)")
                run_quietly([sys.executable, str(ROOT / "scripts" / "demo_k3_receipts.py"), "--count",
                             str(max(1, args.customers // 10))], env, logs / "k3cloud-cashier.log")
                conf = '{"until": "%d"}' % ((time.time() + 60) * 1000)
            log_path = logs / f"{dag_id}-{attempt}.log"
            print(f"\n▶ {title}\n  airflow dags test {dag_id} -c '{conf}'", flush=True)
            rc, secs = run_dag(dag_id, env, log_path, conf)
            state = "succeeded" if rc == 0 else f"FAILED (exit {rc})"
            print(f"  {state} in {secs:.1f}s — log: {log_path.relative_to(ROOT)}")
            failures += rc != 0
        print("\nWhat moved (audit store):")
        print_audit_summary(env)
    print("\nSimulators stopped.")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

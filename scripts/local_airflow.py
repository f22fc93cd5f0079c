"""`make airflow`: a local Airflow UI with both simulators running.

Ports: the UI on AIRFLOW_PORT (default 8080); the simulators on 18801 (Fxiaoke) and 18802 (K3Cloud), or a free
port when those are taken. DEMO_CUSTOMERS (default 300) sets the simulated CRM's size.

The connections fxiaoke_default and k3cloud_default are created in Airflow's metadata DB pointing at the
simulators, only when absent: edit them in the UI (Admin → Connections, with a Test button) and your version
is the one the flows use. Ctrl-C, a SIGTERM or any error stops Airflow and the simulators (no orphans).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

from stack import (
    HOME, ROOT, VENV_BIN, Simulators, airflow_env, ensure_connections, migrate_airflow_db, sim_connections,
    stop_process_group,
)

POOLS = [("fxiaoke_api", 4, "Concurrent Fxiaoke OpenAPI calls"), ("k3cloud_api", 4, "Concurrent K3Cloud Web API calls")]
PASSWORDS = HOME / "simple_auth_manager_passwords.json.generated"


class Stop(Exception):
    """Ctrl-C or SIGTERM: leave the wait loop and stop everything."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make airflow", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=int(os.environ.get("AIRFLOW_PORT", "8080")),
                        help="port of the Airflow UI / API server (env AIRFLOW_PORT, default 8080)")
    parser.add_argument("--customers", type=int, default=int(os.environ.get("DEMO_CUSTOMERS", "300")),
                        help="demo customers the CRM simulator generates (env DEMO_CUSTOMERS, default 300)")
    return parser.parse_args(argv)


def admin_password(airflow: subprocess.Popen, wait_s: float = 0.0) -> str | None:
    """The generated admin password (Airflow writes the file on the first start and prints it only then)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return json.loads(PASSWORDS.read_text()).get("admin")
        except (OSError, ValueError):
            if time.monotonic() >= deadline or airflow.poll() is not None:
                return None
            time.sleep(0.5)


def run_airflow(args: argparse.Namespace, sims: Simulators) -> None:
    """Prepare the metadata DB and run `airflow standalone` until it ends; it is stopped however this ends."""
    env = airflow_env(sims.fx_url, sims.k3_url, parallelism=4, connections_in_env=False)
    env["AIRFLOW__API__PORT"] = str(args.port)
    # An audit reaches the CRM seconds sooner when the scheduler's idle loop is short (docs/events.md, Tuning).
    env.setdefault("AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME", "0.2")
    print(f"Simulators: Fxiaoke {sims.fx_url}  K3Cloud {sims.k3_url}  ({args.customers} demo customers)")
    migrate_airflow_db(env)
    for name, slots, desc in POOLS:
        subprocess.run([str(VENV_BIN / "airflow"), "pools", "set", name, str(slots), desc], env=env,
                       check=True, stdout=subprocess.DEVNULL)
    for conn_id, what in ensure_connections(env, sim_connections(sims.fx_url, sims.k3_url)).items():
        note = "pointing at the simulator" if what == "created" else "kept as saved (edit it in the UI)"
        print(f"Connection {conn_id}: {what}, {note}")
    airflow = subprocess.Popen([str(VENV_BIN / "airflow"), "standalone"], env=env, cwd=ROOT, start_new_session=True)
    try:
        password = admin_password(airflow, wait_s=90)
        shown = f"password {password}" if password else "password"
        print(f"Airflow UI: http://127.0.0.1:{args.port}  (user admin, {shown} — kept in {PASSWORDS})")
        print("Ctrl-C stops Airflow and the simulators.", flush=True)
        while airflow.poll() is None:
            time.sleep(0.5)
        print(f"Airflow exited with code {airflow.returncode}.")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        if airflow.poll() is None:
            print("\nStopping Airflow…", flush=True)
        stop_process_group(airflow, grace=15)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def on_signal(signum, frame):  # noqa: ARG001
        raise Stop()

    signal.signal(signal.SIGINT, on_signal)
    try:
        with Simulators(seed_demo=args.customers) as sims:
            signal.signal(signal.SIGTERM, on_signal)  # after Simulators, which sets its own
            run_airflow(args, sims)
    except (Stop, KeyboardInterrupt):
        pass
    print("Stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

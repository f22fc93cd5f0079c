"""`make airflow`: a local Airflow UI on http://127.0.0.1:8080 with both simulators running.

Connections point at the simulators; Ctrl-C stops Airflow and the simulators (no orphans).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from stack import HOME, ROOT, VENV_BIN, Simulators, airflow_env, migrate_airflow_db, stop_process_group

POOLS = [("fxiaoke_api", 4, "Concurrent Fxiaoke OpenAPI calls"), ("k3cloud_api", 4, "Concurrent K3Cloud Web API calls")]


def main() -> int:
    seed = int(os.environ.get("DEMO_CUSTOMERS", "300"))
    port = os.environ.get("AIRFLOW_PORT", "8080")
    with Simulators(seed_demo=seed) as sims:
        env = airflow_env(sims.fx_url, sims.k3_url, parallelism=4)
        env["AIRFLOW__API__PORT"] = port
        print(f"Simulators: Fxiaoke {sims.fx_url}  K3Cloud {sims.k3_url}  ({seed} demo customers)")
        migrate_airflow_db(env)
        for name, slots, desc in POOLS:
            subprocess.run([str(VENV_BIN / "airflow"), "pools", "set", name, str(slots), desc], env=env,
                           check=True, stdout=subprocess.DEVNULL)
        airflow = subprocess.Popen([str(VENV_BIN / "airflow"), "standalone"], env=env, cwd=ROOT, start_new_session=True)
        stop = {"now": False}

        def on_signal(signum, frame):  # noqa: ARG001
            stop["now"] = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        print(f"Airflow UI: http://127.0.0.1:{port}  (user admin; password in {HOME}/simple_auth_manager_passwords.json.generated)")
        print("Ctrl-C stops Airflow and the simulators.")
        while not stop["now"] and airflow.poll() is None:
            time.sleep(0.5)
        print("\nStopping Airflow…", flush=True)
        stop_process_group(airflow, grace=15)
    print("Stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Orchestration of ``python -m bench``: simulators, seeding, the phases (each in a subprocess), the report."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import everyday, realistic, report
from bench.sims import Seeded, Simulators

ROOT = Path(__file__).resolve().parents[1]
ORDERS_DAG = ROOT / "dags" / "fxiaoke_orders_to_k3cloud.py"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--customers", type=int, default=2000, help="CRM customers seeded and synced (N)")
    p.add_argument("--orders", type=int, default=2000, help="CRM sales orders seeded, 1–3 lines each (M)")
    p.add_argument("--latency-ms", type=int, default=20, help="latency added to every API call in both simulators (L)")
    p.add_argument("--transform-records", type=int, default=100_000, help="generated records for the mapping throughput")
    p.add_argument("--instructions-records", type=int, default=100_000,
                   help="records of the mapping transform counted under valgrind (instructions per record: a figure "
                        "load does not move); 0, or valgrind not installed, skips the count (bench/mapping.py)")
    p.add_argument("--memory-sizes", default="10000,100000",
                   help="comma-separated customer counts for the memory-scaling runs (largest is the 100k target)")
    p.add_argument("--profile", choices=["fast", "both"], default="both",
                   help="fast: the bare simulators (+ L) only; both: also the realistic service-time profile (bench/realistic.py)")
    p.add_argument("--realistic-customers", type=int, default=10_000,
                   help="customers of the realistic profile (bench/realistic.py): its customers first sync and both "
                        "per-record baselines; its orders are --orders")
    p.add_argument("--single-thread-records", type=int, default=2000,
                   help="records the realistic 1-thread Save-per-record baseline writes (M); its save time is also "
                        "shown scaled to --realistic-customers (× N/M): 10 000 saves one by one take ~15 min")
    p.add_argument("--target-customers", type=int, default=20_000,
                   help="customers of the target-size fast-profile run and the everyday runs (bench/everyday.py); 0 skips it")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="folder for latest.json / latest.md")
    args = p.parse_args(argv)
    if (args.customers < 1 or args.orders < 0 or args.latency_ms < 0 or args.target_customers < 0
            or args.realistic_customers < 1 or args.single_thread_records < 1):
        p.error("--customers, --realistic-customers and --single-thread-records must be >= 1, --orders >= 0, "
                "--latency-ms >= 0, --target-customers >= 0")
    args.memory_sizes = sorted({int(x) for x in args.memory_sizes.split(",") if x.strip()})
    return args


def orders_available() -> tuple[bool, str]:
    from fxiaoke_k3cloud.flows.specs import FLOWS

    if "orders" not in FLOWS:
        return False, "orders flow not built yet: FLOWS has no 'orders'"
    if not ORDERS_DAG.exists():
        return False, f"orders flow not built yet: {ORDERS_DAG.relative_to(ROOT)} does not exist"
    return True, "orders flow found"


class PhaseRunner:
    """Runs ``bench.phase`` in a subprocess with the simulators' connections and one audit database."""

    def __init__(self, sims: Simulators, workdir: Path) -> None:
        self.sims = sims
        self.workdir = workdir
        self.count = 0
        # One Fernet key for every phase, as every component of a deployment has: the phases (fresh processes,
        # like task processes) then share the Fxiaoke token through the audit store instead of fetching their own.
        from cryptography.fernet import Fernet

        self.fernet_key = Fernet.generate_key().decode()

    def env(self, audit_db: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.sims.env())
        env.update({
            "AIRFLOW_HOME": str(self.workdir / "airflow-home"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "SYNC_AUDIT_URL": f"sqlite:///{self.workdir / audit_db}",
            "AIRFLOW__CORE__FERNET_KEY": self.fernet_key,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), str(ROOT / "plugins"), env.get("PYTHONPATH")])),
        })
        return env

    def run(self, spec: dict[str, Any], *, audit_db: str = "audit.db", api: bool = True) -> dict[str, Any]:
        self.count += 1
        name = "-".join(str(x) for x in (f"{self.count:02d}", spec["kind"], spec.get("flow") or spec.get("n"), spec.get("step")) if x)
        spec_path, out_path, log_path = (self.workdir / f"{name}.{ext}" for ext in ("spec.json", "out.json", "log"))
        spec_path.write_text(json.dumps(spec))
        if api:
            self.sims.reset_stats()
        print(f"  … {name}", flush=True)
        with open(log_path, "w") as log:
            proc = subprocess.run([sys.executable, "-m", "bench.phase", str(spec_path), str(out_path)],
                                  cwd=ROOT, env=self.env(audit_db), stdout=log, stderr=subprocess.STDOUT)
        if proc.returncode != 0:
            raise RuntimeError(f"phase {name} failed (exit {proc.returncode}); log {log_path}:\n"
                               + log_path.read_text()[-4000:])
        result = json.loads(out_path.read_text())
        if api:
            result["api"] = self.sims.stats_since_reset()
        return result


def run_memory(phases: PhaseRunner, n: int) -> dict[str, Any]:
    """The three steps of an N-customer run, each in its own process (as Airflow runs each task)."""
    steps: dict[str, Any] = {}
    xcom: Any = None
    for step in ("stage", "transform", "load"):
        steps[step] = phases.run({"kind": "memory", "n": n, "step": step, "xcom": xcom},
                                 audit_db=f"memory-{n}.db", api=False)
        xcom = steps[step]["xcom"]
    return {"n": n, "steps": steps}


def machine_info() -> dict[str, Any]:
    return {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def run_flows(args: argparse.Namespace, sims: Simulators, phases: PhaseRunner, seeded: Seeded,
              with_orders: bool) -> dict[str, Any]:
    flows = ["customers"] + (["orders"] if with_orders else [])
    results: dict[str, Any] = {}
    for flow in flows:  # orders reference the customers, so customers go first
        results[flow] = {"first": phases.run({"kind": "flow", "flow": flow, "run_id": f"bench-{flow}-1"})}
    for flow in flows:
        # Nothing changed in the CRM: a scheduled run reads an empty window (watermark − lookback → now)…
        results[flow]["noop"] = phases.run({"kind": "flow", "flow": flow, "run_id": f"bench-{flow}-2"})
        # …and a full re-read of the same data must find every payload unchanged and write nothing.
        results[flow]["resync"] = phases.run({"kind": "flow", "flow": flow, "run_id": f"bench-{flow}-3",
                                              "params": {"full_resync": True}})
    # Baseline into a fresh K3Cloud (reset drops customers; the base data comes back; the fault profile does not).
    sims.k3.reset()
    sims.set_latency(args.latency_ms)
    results["customers"]["baseline"] = phases.run({"kind": "baseline", "flow": "customers"}, audit_db="baseline.db")
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    sys.path[:0] = [str(ROOT / "plugins")]
    with_orders, orders_note = orders_available()
    print(f"bench: {args.customers} customers, {args.orders} orders, latency {args.latency_ms} ms; realistic profile "
          f"{args.realistic_customers} customers (1-thread baseline on {args.single_thread_records}); {orders_note}",
          flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="fxk3-bench-"))
    sims = Simulators().start()
    try:
        seeded = sims.seed(args.customers, args.orders if with_orders else 0)
        sims.set_latency(args.latency_ms)
        phases = PhaseRunner(sims, workdir)
        flows = run_flows(args, sims, phases, seeded, with_orders)
        real = None
        if args.profile == "both":
            print("realistic profile", flush=True)
            real = realistic.run(args, sims, phases, ["customers"] + (["orders"] if with_orders else []))
        target = None
        if args.target_customers:
            print(f"target size: {args.target_customers} customers, fast profile, everyday runs", flush=True)
            target = everyday.run(args, sims, phases)
        transform = phases.run({"kind": "transform", "n": args.transform_records,
                                "instructions_records": args.instructions_records}, api=False)
        memory = [run_memory(phases, n) for n in args.memory_sizes]
    finally:
        sims.stop()
    results = report.build(
        machine=machine_info(), args=vars(args) | {"out": str(args.out)}, seeded=seeded, flows=flows,
        transform=transform, memory=memory, orders_note=orders_note, with_orders=with_orders,
        total_s=time.perf_counter() - started, workdir=str(workdir),
    )
    if real is not None:
        results["realistic"] = realistic.figures(real)
        results["targets"] += realistic.targets(results["realistic"])
        results["raw_realistic"] = real
    if target is not None:
        results["target_size"] = everyday.figures(target, args.latency_ms)
        results["targets"] += everyday.targets(results["target_size"])
        results["raw_target_size"] = target
    markdown = report.markdown(results)
    marker = "## Targets"
    sections = []
    if real is not None:
        sections += realistic.markdown(results["realistic"])
    if target is not None:
        sections += everyday.markdown(results["target_size"])
    markdown = markdown.replace(marker, "\n".join(sections) + "\n" + marker, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str) + "\n")
    (args.out / "latest.md").write_text(markdown)
    print(markdown)
    print(f"written: {args.out / 'latest.md'}, {args.out / 'latest.json'} (phase logs in {workdir})")
    return 0

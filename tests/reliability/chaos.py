"""Chaos suite: the three flows under injected faults, then a check of both simulators' state.

Standalone (starts its own simulators and a temp audit store)::

    python -m tests.reliability.chaos --size 200 --seed 1 --profile mixed
    python -m tests.reliability.chaos --size 60 --seed 3 --profile quota --json

Sequence: seed ``size`` demo customers (each with 1–2 orders of 1–3 lines) in the CRM; with the profile on in
both simulators, settle customers → orders (task retries, re-runs); push every K3Cloud order to an audited
delivery notice (faults off: that is test setup, not the flow under test); settle deliveries under the profile;
then clear the faults and run each flow once more (the settling pass). Finally the simulators' state is checked:
every CRM customer/order is in K3Cloud exactly once with the right content, every audited notice reached the CRM
exactly once with exactly one owner message, and the audit store has a final good outcome for every source id.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

# Timeouts: the client gives up after CLIENT_TIMEOUT_S, the simulator answers timed-out calls after TIMEOUT_DELAY_S.
CLIENT_TIMEOUT_S = 1.0
TIMEOUT_DELAY_S = 1.5

PROFILES: dict[str, dict[str, Any]] = {
    # Everything at once, at rates that make most calls of a run meet no fault but every run meet many.
    "mixed": {"latency_ms": 1, "error_rate": 0.05, "timeout_rate": 0.02, "timeout_delay_s": TIMEOUT_DELAY_S,
              "session_loss_every": 11, "token_expire_every": 29, "lock_conflict_rate": 0.05},
    # Lost answers to applied writes: the read-back path.
    "timeouts": {"timeout_rate": 0.08, "timeout_delay_s": TIMEOUT_DELAY_S, "error_rate": 0.02},
    # Sessions and tokens lost often, K3Cloud network-control conflicts.
    "sessions": {"session_loss_every": 4, "token_expire_every": 17, "lock_conflict_rate": 0.15},
    # Gateway rate limits below what the client expects (the client is told 100/20 s, the servers allow 30).
    "throttle": {"rate_limit_per_20s": 30, "error_rate": 0.02},
    # The CRM's daily quota runs out in the middle of the deliveries load (3 CRM writes per notice) and is
    # restored (the profile without ``quota``) before the next run.
    "quota": {"quota": 25, "error_rate": 0.03, "session_loss_every": 9, "lock_conflict_rate": 0.05},
}
K3_KEYS = {"seed", "latency_ms", "error_rate", "timeout_rate", "timeout_delay_s", "session_loss_every",
           "rate_limit_per_20s", "lock_conflict_rate"}
FX_KEYS = {"seed", "latency_ms", "error_rate", "timeout_rate", "timeout_delay_s", "token_expire_every",
           "rate_limit_per_20s", "quota"}
GOOD = {"created", "updated", "unchanged"}


def split_profile(name: str, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(fxiaoke profile, k3cloud profile) for a named profile and seed."""
    profile = {**PROFILES[name], "seed": seed}
    return ({k: v for k, v in profile.items() if k in FX_KEYS}, {k: v for k, v in profile.items() if k in K3_KEYS})


@dataclass
class Outcome:
    profile: str
    seed: int
    size: int
    seconds: float = 0.0
    faults: dict[str, int] = field(default_factory=dict)
    http_calls: int = 0
    flows: dict[str, Any] = field(default_factory=dict)
    read_backs: int = 0
    under_faults: dict[str, str] = field(default_factory=dict)  # share of records landed before the settling pass
    counts: dict[str, int] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)
    losses: list[str] = field(default_factory=list)
    message_losses: list[str] = field(default_factory=list)  # notices whose owner never got the message
    wrong: list[str] = field(default_factory=list)
    settled: dict[str, bool] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.duplicates or self.losses or self.message_losses or self.wrong) and all(self.settled.values())

    def as_dict(self) -> dict[str, Any]:
        return {"profile": self.profile, "seed": self.seed, "size": self.size, "seconds": round(self.seconds, 1),
                "faults_seen": self.faults, "faults_total": sum(self.faults.values()), "http_calls": self.http_calls,
                "flows": self.flows, "read_backs": self.read_backs, "landed_under_faults": self.under_faults,
                "counts": self.counts, "duplicates": len(self.duplicates), "losses": len(self.losses),
                "message_losses": len(self.message_losses),
                "wrong_content": len(self.wrong), "settled": self.settled, "problems": (self.duplicates + self.losses + self.message_losses + self.wrong)[:20]}


def quiet_logs() -> None:
    """The flows log at INFO through structlog; the chaos report is what a standalone run should print."""
    import logging

    try:
        import structlog

        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    except ImportError:  # pragma: no cover
        pass
    for name in ("fxiaoke_k3cloud", "airflow", "airflow.task"):
        logging.getLogger(name).setLevel(logging.WARNING)


def clear_client_caches() -> None:
    """What a fresh worker process starts with: no cached token, no shared throttle state."""
    from fxiaoke_k3cloud.hooks.fxiaoke_throttle import clear_shared_throttles
    from fxiaoke_k3cloud.hooks.fxiaoke_token import clear_process_caches

    clear_process_caches()
    clear_shared_throttles()


def run_scenario(fx: Any, k3: Any, store: Any, *, size: int, seed: int, profile: str,
                 max_runs: int = 8) -> Outcome:
    """Seed, run everything under ``profile``, settle, verify. ``fx``/``k3`` are SimulatorProcess objects whose
    ``*_default`` connections are already set in the environment; ``store`` is a fresh, migrated audit store."""
    from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook

    from tests.reliability.faultcount import FaultCounter
    from tests.reliability.runner import CUSTOMERS, DELIVERIES, ORDERS, Scheduler, fast_backoff
    from tests.reliability.verify import landed, verify

    sys.path.insert(0, str(ROOT / "scripts"))
    from demo_deliveries import create_demo_deliveries

    out = Outcome(profile, seed, size)
    started = time.monotonic()
    fx.reset(), k3.reset()
    clear_client_caches()
    fx.seed({"demo": size})
    fx_profile, k3_profile = split_profile(profile, seed)
    without_quota = {k: v for k, v in fx_profile.items() if k != "quota"}
    scheduler = Scheduler(max_runs=max_runs, between_attempts=clear_client_caches if profile == "quota" else None)
    counter = FaultCounter()
    with counter.active(), fast_backoff(0.5 if profile == "throttle" else 0.02):
        fx.faults(fx_profile), k3.faults(k3_profile)
        fx.faults(without_quota)
        out.settled[CUSTOMERS] = scheduler.settle(CUSTOMERS)
        out.settled[ORDERS] = scheduler.settle(ORDERS)
        fx.faults({}), k3.faults({})
        notices = ship_orders(K3CloudHook(retry_wait_s=0), create_demo_deliveries, 10 * size + 10)
        # Window ends render to whole seconds in K3Cloud filters ('yyyy-MM-dd HH:mm:ss'): a notice audited in
        # the run's own second is left for the next run. The scheduler's runs are minutes apart; ours are not.
        time.sleep(1.1)
        fx.faults(fx_profile), k3.faults(k3_profile)
        if "quota" in fx_profile:  # one run meets the quota running out mid-run; then the day's quota is back
            scheduler.run_once(DELIVERIES)
            fx.faults(without_quota)
        out.settled[DELIVERIES] = scheduler.settle(DELIVERIES)
        fx.faults({}), k3.faults({})
        before = landed(fx, k3)
        for flow in (CUSTOMERS, ORDERS, DELIVERIES):  # the settling pass, faults cleared
            out.settled[f"{flow} (settling pass)"] = scheduler.run_once(flow)
        after = landed(fx, k3)
    out.under_faults = {k: f"{before[k]}/{after[k]}" for k in after}
    out.faults, out.http_calls = dict(counter.faults), counter.calls
    out.flows = {flow: s.as_dict() for flow, s in scheduler.stats.items()}
    verify(out, fx, k3, store, notices)
    out.seconds = time.monotonic() - started
    return out


def ship_orders(hook: Any, create_demo_deliveries: Any, count: int) -> list[str]:
    """A K3Cloud user audits the synced sale orders and ships them: audited delivery notices (the test's setup)."""
    numbers = [r["FBillNo"] for page in hook.execute_bill_query("SAL_SaleOrder", ["FBillNo", "FDocumentStatus"])
               for r in page if r["FDocumentStatus"] in ("A", "D")]
    for i in range(0, len(numbers), 100):
        hook.submit("SAL_SaleOrder", numbers=numbers[i:i + 100])
        hook.audit("SAL_SaleOrder", numbers=numbers[i:i + 100])
    return create_demo_deliveries(hook, count)


# --------------------------------------------------------------------------------------------------
# standalone
# --------------------------------------------------------------------------------------------------
def _standalone_env(home: str) -> None:
    os.environ.setdefault("AIRFLOW_HOME", home)
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
    os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{home}/airflow.db")
    os.environ.setdefault("SIM_LOG_DIR", home)
    for path in (ROOT / "plugins", ROOT / "tests", ROOT):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))


def connections(fx: Any, k3: Any) -> dict[str, str]:
    """Connection env vars for a chaos run: short read timeout (timeouts after the write happen), the client's
    Fxiaoke throttle at the gateway's documented limit."""
    from simproc import fxiaoke_conn, k3cloud_conn

    return {"AIRFLOW_CONN_FXIAOKE_DEFAULT": fxiaoke_conn(fx, timeout=CLIENT_TIMEOUT_S, calls_per_20s=100),
            "AIRFLOW_CONN_K3CLOUD_DEFAULT": k3cloud_conn(k3, timeout=CLIENT_TIMEOUT_S)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=100, help="demo CRM customers to seed (each has 1–2 orders)")
    parser.add_argument("--seed", type=int, action="append", help="fault seed (repeatable; default 1)")
    parser.add_argument("--profile", action="append", choices=sorted(PROFILES), help="repeatable; default mixed")
    parser.add_argument("--max-runs", type=int, default=8, help="bound on runs per flow before giving up")
    parser.add_argument("--json", action="store_true", help="print one JSON object per scenario")
    args = parser.parse_args(argv)
    home = tempfile.mkdtemp(prefix="chaos-")
    _standalone_env(home)
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    quiet_logs()
    from simproc import SimulatorProcess

    from fxiaoke_k3cloud.audit import AuditStore

    fx, k3 = SimulatorProcess("fxiaoke").start(), SimulatorProcess("k3cloud").start()
    failures = 0
    try:
        os.environ.update(connections(fx, k3))
        for profile in args.profile or ["mixed"]:
            for seed in args.seed or [1]:
                url = f"sqlite:///{tempfile.mkdtemp(prefix='chaos-audit-', dir=home)}/audit.db"
                os.environ["SYNC_AUDIT_URL"] = url
                store = AuditStore(url)
                store.migrate()
                out = run_scenario(fx, k3, store, size=args.size, seed=seed, profile=profile, max_runs=args.max_runs)
                store.dispose()
                failures += not out.ok
                print(json.dumps(out.as_dict(), ensure_ascii=False) if args.json else summary_line(out), flush=True)
    finally:
        fx.stop(), k3.stop()
    return 1 if failures else 0


def summary_line(out: Outcome) -> str:
    d = out.as_dict()
    retries = sum(f["task_retries"] for f in d["flows"].values())
    runs = {k: v["runs"] for k, v in d["flows"].items()}
    return (f"{'OK  ' if out.ok else 'FAIL'} profile={out.profile} seed={out.seed} size={out.size} "
            f"{d['seconds']}s calls={out.http_calls} faults={d['faults_total']} {json.dumps(out.faults)} "
            f"task_retries={retries} runs={runs} read_backs={out.read_backs} landed_under_faults={out.under_faults} "
            f"counts={out.counts} duplicates={d['duplicates']} losses={d['losses']} message_losses={d['message_losses']} wrong={d['wrong_content']}"
            + ("" if out.ok else f" settled={out.settled} problems={d['problems']}"))


if __name__ == "__main__":
    sys.exit(main())

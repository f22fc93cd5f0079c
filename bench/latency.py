"""`make bench-latency`: how long an audit in K3Cloud takes to reach the CRM, and a CRM edit to reach K3Cloud,
through a real Airflow (scheduler + LocalExecutor, dag-processor, triggerer, api-server) and the simulators.

    python -m bench.latency [--events 10] [--crm-events 5] [--poll-s 5] [--fx-poll-s 20] [--phases poll,push]
                            [--gap-s 0,10] [--airflow-env KEY=VALUE ...] [--out bench/results]

    # the 100-audit run with a triggerer restart halfway (about 40 min on 2 busy cores):
    python -m bench.latency --phases poll --events 100 --crm-events 4 --no-failover --gap-s 0,5

Per phase, fresh simulators and a fresh Airflow home:

* ``poll``: the K3Cloud watcher polls every ``--poll-s`` (business hours or not: the bench sets both intervals);
  the Fxiaoke watcher every ``--fx-poll-s``; the triggerer is restarted after half of the events.
* ``push``: no watcher; the K3Cloud simulator posts a signed doorbell to the receiver after each Audit
  (the stand-in for the service plug-in of docs/events.md).

Each event: a CRM order and its K3Cloud sale order (id map seeded as the orders flow leaves it), pushed to a
delivery notice and submitted; then, after a random pause of ``--gap-s`` seconds (so audits fall at random
moments of the poll cycle), the notice is audited. Measured from just before the Audit call to the CRM delivery
note's ``create_time`` and the owner message's ``sentAt`` (simulator clocks = this machine's clock). CRM → K3Cloud:
an account's name is changed at a random moment; measured to the K3Cloud customer's ``FModifyDate``.
Polling cost: the watchers' calls during a quiet minute at the end, per hour. Every note and message is
checked for duplicates at the CRM simulator (exit code 1 on a duplicate or a missing one). Where the time goes:
per audit, the asset event, the woken run's queued/running and each task's queued/start/end from Airflow's
metadata DB, summarised per segment. The stack's Airflow settings are ``bench.airflow_stack.LATENCY_SETTINGS``
(``--airflow-env AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME=1`` measures Airflow's default). Results:
``latency.json`` and ``latency.md`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.airflow_stack import AirflowStack, new_port
from tests.simproc import SimulatorProcess, fxiaoke_conn, k3cloud_conn

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOTICE = "SAL_DELIVERYNOTICE"
DELIVERIES = "k3cloud_deliveries_to_fxiaoke"
CUSTOMERS = "fxiaoke_customers_to_k3cloud"
WATCHER = "k3cloud_audited_delivery_notices"
REP = "FSUID_0000000000000000000000000000A002"
PUSH_SECRET = "bench-push-secret-" + os.urandom(8).hex()
EVENT_TIMEOUT_S = 180.0


def local_ms(text: str) -> int:
    moment = datetime.fromisoformat(str(text))
    return int((moment if moment.tzinfo else moment.replace(tzinfo=SHANGHAI)).timestamp() * 1000)


def summary(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]  # nearest rank
    return {"n": len(values), "p50": round(statistics.median(ordered), 2), "p95": round(p95, 2),
            "max": round(ordered[-1], 2), "min": round(ordered[0], 2)}


#: The deliveries path as consecutive segments: (label, from mark, to mark[, unless mark]); a segment is skipped in a
#: timeline that lacks one of its marks, or has its "unless" mark.
SEGMENTS = [
    ("audit → asset event", None, "asset_event"),
    ("asset event → run queued", "asset_event", "run_queued"),
    ("run queued → running", "run_queued", "run_running"),
    ("run running → extract queued", "run_running", "extract_deliveries.queued"),
    ("extract queued → started", "extract_deliveries.queued", "extract_deliveries.start"),
    ("extract started → ended", "extract_deliveries.start", "extract_deliveries.end"),
    ("extract ended → transform queued", "extract_deliveries.end", "transform_deliveries.queued"),
    ("transform queued → started", "transform_deliveries.queued", "transform_deliveries.start"),
    ("transform started → ended", "transform_deliveries.start", "transform_deliveries.end"),
    ("transform ended → load queued", "transform_deliveries.end", "load_deliveries.queued"),
    # transform fused into the load task (dag_factory Stage with a tuple of steps): one hand-over instead of two
    ("extract ended → load queued (fused)", "extract_deliveries.end", "load_deliveries.queued", "transform_deliveries.end"),
    ("load queued → started", "load_deliveries.queued", "load_deliveries.start"),
    ("load started → CRM note", "load_deliveries.start", "note"),
]


def segments(timelines: list[dict[str, float]]) -> dict[str, dict[str, Any]]:
    """p50/p95/max of each segment of the deliveries path over the events (seconds)."""
    out = {}
    for label, start, end, *unless in SEGMENTS:
        values = [t[end] - (t[start] if start else 0.0) for t in timelines
                  if end in t and (start is None or start in t) and not any(u in t for u in unless)]
        out[label] = summary(values)
    return out


def crm_account(name: str, number: str) -> dict[str, Any]:
    """A CRM account the customers mapping accepts (customer number and type are required there)."""
    return {"name": name, "field_fnfcA__c": number, "field_n5V1I__c": "KHLB001_SYS", "owner": [REP]}


class World:
    """Hooks on the simulators and the benchmark's writes (run in this process, not in Airflow)."""

    def __init__(self, fx: SimulatorProcess, k3: SimulatorProcess, audit_url: str) -> None:
        os.environ["AIRFLOW_CONN_FXIAOKE_DEFAULT"] = fxiaoke_conn(fx, timeout=30)
        os.environ["AIRFLOW_CONN_K3CLOUD_DEFAULT"] = k3cloud_conn(k3, timeout=30)
        # Airflow (under the hooks) is imported once main() has pointed AIRFLOW_HOME at the bench's folder.
        from fxiaoke_k3cloud.audit import AuditStore
        from fxiaoke_k3cloud.hooks.fxiaoke import FxiaokeHook
        from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook

        self.fxsim, self.k3sim = fx, k3
        self.fx, self.k3 = FxiaokeHook(retry_wait_s=0.2), K3CloudHook(retry_wait_s=0.2)
        self.store = AuditStore(audit_url)
        self.store.migrate()
        self.seq = 0

    def submitted_notice(self) -> str:
        from fxiaoke_k3cloud.audit import IdMapEntry

        self.seq += 1
        number, customer = f"SOB{self.seq:05d}", f"CUSTB-{self.seq}"
        account = self.fx.create_record("AccountObj", crm_account(f"客户 {number}", customer))
        product = next(p["_id"] for p in self.fxsim.records("ProductObj") if p["product_code"] == "MAT-0001")
        order = self.fx.create_record("SalesOrderObj", {"name": number, "account_id": account, "owner": [REP], "order_status": "7"},
                                      details={"SalesOrderProductObj": [{"product_id": product, "quantity": "2", "sales_price": "10"}]})
        self.k3.save("BD_Customer", {"FCUSTID": 0, "FCreateOrgId": {"FNumber": "100"}, "FUseOrgId": {"FNumber": "100"},
                                     "FNumber": customer, "FName": f"客户 {customer}", "FTRADINGCURRID": {"FNumber": "PRE001"}},
                     IsAutoSubmitAndAudit=True)
        saved = self.k3.save("SAL_SaleOrder", {
            "FID": 0, "FBillNo": number, "FBillTypeID": {"FNumber": "XSDD01_SYS"}, "FDate": "2026-01-02",
            "FSaleOrgId": {"FNumber": "100"}, "FCustId": {"FNumber": customer}, "FNetOrderBillNo": order,
            "FSaleOrderFinance": {"FSettleCurrId": {"FNumber": "PRE001"}},
            "FSaleOrderEntry": [{"FMaterialId": {"FNumber": "MAT-0001"}, "FQty": 2, "FTaxPrice": 10}]}, IsAutoSubmitAndAudit=True)
        self.store.upsert_id_map("order", [IdMapEntry(source_id=order, target_id=str(saved.id), target_number=number)])
        self.store.upsert_id_map("customer", [IdMapEntry(source_id=account, target_number=customer)])
        # The order-line map the orders flow keeps (a notice line needs its CRM order line).
        line = next(r["_id"] for r in self.fxsim.records("SalesOrderProductObj") if r["order_id"] == order)
        entry = next(d for d in self.k3sim.records("SAL_SaleOrder") if d.get("FBillNo") == number)["FSaleOrderEntry"][0]["FEntryID"]
        self.store.upsert_id_map("order_line", [IdMapEntry(source_id=line, target_id=str(entry))])
        pushed = self.k3.push("SAL_SaleOrder", NOTICE, "SaleOrder-DeliveryNotice", numbers=[number])
        notice = pushed.targets[0].number
        self.k3.submit(NOTICE, numbers=[notice])
        return notice

    def arrival(self, notice: str, timeout: float = EVENT_TIMEOUT_S) -> tuple[int | None, int | None]:
        """(note create_time ms, message sentAt ms) of a notice, waiting for both."""
        deadline = time.monotonic() + timeout
        note_ms = msg_ms = None
        while time.monotonic() < deadline and (note_ms is None or msg_ms is None):
            if note_ms is None:
                note_ms = next((int(n["create_time"]) for n in self.fxsim.records("DeliveryNoteObj") if n.get("name") == notice), None)
            if msg_ms is None:
                msg_ms = next((int(m["sentAt"]) for m in self.fxsim._admin("GET", "messages") if notice in json.dumps(m, ensure_ascii=False)), None)
            time.sleep(0.1)
        return note_ms, msg_ms

    def duplicates(self) -> dict[str, int]:
        names = [n.get("name") for n in self.fxsim.records("DeliveryNoteObj")]
        texts = [json.dumps(m, ensure_ascii=False) for m in self.fxsim._admin("GET", "messages")]
        notices = {n for n in names if n}
        return {"notes": len(names) - len(notices),
                "messages": sum(max(0, sum(n in t for t in texts) - 1) for n in notices)}

    def calls(self) -> dict[str, int]:
        k3 = sum(n for k, n in self.k3sim.stats()["calls"].items() if "executebillquery" in k.lower())
        fx = sum(n for k, n in self.fxsim.stats()["calls"].items() if k.endswith("/data/query"))
        return {"k3cloud_bill_queries": k3, "fxiaoke_queries": fx}


def deliveries_phase(stack: AirflowStack, world: World, args: argparse.Namespace, phase: str, rng: random.Random) -> dict[str, Any]:
    notes, messages, restarts, failover = [], [], [], {}
    timelines: list[dict[str, float]] = []
    for i in range(args.events):
        if phase == "poll" and i == args.events // 2 and args.events > 1:
            restarts.append(round(stack.restart("triggerer"), 1))
        notice = world.submitted_notice()
        stack.wait("the deliveries DAG to be idle", lambda: stack.idle(DELIVERIES), 300)
        time.sleep(rng.uniform(*args.gap_s))
        started_ms = int(time.time() * 1000)
        world.k3.audit(NOTICE, numbers=[notice])
        note_ms, msg_ms = world.arrival(notice)
        note_s = None if note_ms is None else (note_ms - started_ms) / 1000
        msg_s = None if msg_ms is None else (msg_ms - started_ms) / 1000
        timeline = stack.timeline(DELIVERIES, started_ms)
        if note_s is not None:
            timeline["note"] = note_s
        timelines.append(timeline)
        print(f"  {phase} event {i + 1}/{args.events} {notice}: note {note_s} s, message {msg_s} s", flush=True)
        if note_s is not None:
            notes.append(note_s)
        if msg_s is not None:
            messages.append(msg_s)
    if phase == "poll" and args.failover:
        failover = crash_holding_triggerer(stack, world)
    missing = args.events - min(len(notes), len(messages))
    return {"audit_to_note_s": summary(notes), "audit_to_message_s": summary(messages), "missing": missing,
            "triggerer_restarts_s": restarts, "failover": failover, "runs": stack.runs(DELIVERIES), "duplicates": world.duplicates(),
            "segments_s": segments(timelines), "timelines": timelines,
            "raw": {"note": notes, "message": messages}}


def crash_holding_triggerer(stack: AirflowStack, world: World) -> dict[str, Any]:
    """With two triggerers, SIGKILL the one holding the watcher and audit a notice right away: how long until the
    other triggerer runs the watcher, and how late that audit reaches the CRM."""
    def running() -> set[int]:
        return {r[0] for r in stack.query("SELECT id FROM job WHERE job_type = 'TriggererJob' AND state = 'running'")}

    holder = stack.wait("a running triggerer to hold the watcher",
                        lambda: (h := stack.trigger_holder("K3CloudAuditTrigger")) in running() and h, 180)
    stack.start_component("triggerer-2", "triggerer")
    stack.wait("the second triggerer's heartbeat", lambda: len(running()) >= 2, 120)
    notice = world.submitted_notice()
    stack.wait("the deliveries DAG to be idle", lambda: stack.idle(DELIVERIES), 300)
    crashed = time.monotonic()
    stack.crash("triggerer")
    started_ms = int(time.time() * 1000)
    world.k3.audit(NOTICE, numbers=[notice])
    new = stack.wait("another triggerer to adopt the watcher", lambda: (
        (h := stack.trigger_holder("K3CloudAuditTrigger")) not in (None, holder) and h), 300)
    adopted_s = round(time.monotonic() - crashed, 1)
    note_ms, _ = world.arrival(notice)
    late = None if note_ms is None else round((note_ms - started_ms) / 1000, 1)
    print(f"  failover: triggerer job {holder} killed; job {new} runs the watcher after {adopted_s} s; "
          f"an audit made at the crash reached the CRM after {late} s", flush=True)
    return {"crashed_job": holder, "adopting_job": new, "adopted_after_s": adopted_s, "audit_to_note_s": late}


def crm_phase(stack: AirflowStack, world: World, args: argparse.Namespace, rng: random.Random) -> dict[str, Any]:
    account = world.fx.create_record("AccountObj", crm_account("客户 延迟基准 0", "CUSTLAT-0001"))
    stack.unpause(CUSTOMERS)

    def k3_customer_named(name: str) -> int | None:
        found = [c for c in world.k3sim.records("BD_Customer") if c.get("FName") == name]
        return local_ms(found[0]["FModifyDate"]) if found else None

    stack.wait("the first customers run to sync the account", lambda: k3_customer_named("客户 延迟基准 0"), 300)
    values = []
    for i in range(1, args.crm_events + 1):
        stack.wait("the customers DAG to be idle", lambda: stack.idle(CUSTOMERS), 300)
        time.sleep(rng.uniform(*args.gap_s))
        name = f"客户 延迟基准 {i}"
        started_ms = int(time.time() * 1000)
        world.fx.update_record("AccountObj", account, {"name": name})
        try:
            written = stack.wait(f"K3Cloud customer {name}", lambda: k3_customer_named(name), EVENT_TIMEOUT_S)
        except RuntimeError:
            written = None
        seconds = None if written is None else (written - started_ms) / 1000
        print(f"  crm edit {i}/{args.crm_events}: K3Cloud write after {seconds} s", flush=True)
        if seconds is not None:
            values.append(seconds)
    return {"crm_edit_to_k3cloud_s": summary(values), "missing": args.crm_events - len(values), "runs": stack.runs(CUSTOMERS),
            "raw": values}


def polling_cost(stack: AirflowStack, world: World, seconds: float) -> dict[str, Any]:
    for dag_id in (DELIVERIES, CUSTOMERS):
        stack.wait(f"{dag_id} idle", lambda d=dag_id: stack.idle(d), 300)
    before = world.calls()
    time.sleep(seconds)
    after = world.calls()
    return {f"{k}_per_hour": round((after[k] - before[k]) * 3600 / seconds) for k in before} | {"window_s": seconds}


def run_phase(phase: str, args: argparse.Namespace, workdir: Path, rng: random.Random) -> dict[str, Any]:
    port = new_port()
    receiver = f"http://127.0.0.1:{port}/sync-hooks/k3cloud/audit"
    if phase == "push":
        os.environ.update({"K3SIM_OUTBOUND_URL": receiver, "K3SIM_OUTBOUND_SECRET": PUSH_SECRET})
    else:
        os.environ.pop("K3SIM_OUTBOUND_URL", None)
    fx, k3 = SimulatorProcess("fxiaoke").start(), SimulatorProcess("k3cloud").start()
    extra = {
        "SYNC_K3CLOUD_EVENTS": phase, "SYNC_K3CLOUD_POLL_S": str(args.poll_s), "SYNC_K3CLOUD_OFF_HOURS_POLL_S": str(args.poll_s),
        "SYNC_FXIAOKE_EVENTS": "poll" if phase == "poll" else "schedule", "SYNC_FXIAOKE_POLL_S": str(args.fx_poll_s),
        "SYNC_FXIAOKE_OFF_HOURS_POLL_S": str(args.fx_poll_s),
        "AIRFLOW_CONN_SYNC_PUSH_K3CLOUD": json.dumps({"conn_type": "generic", "password": PUSH_SECRET}),
        **dict(kv.split("=", 1) for kv in args.airflow_env),
    }
    stack = AirflowStack(workdir / phase, fx, k3, port=port, extra_env=extra)
    try:
        with stack:
            world = World(fx, k3, stack.env["SYNC_AUDIT_URL"])
            stack.unpause(DELIVERIES)
            if phase == "poll":
                stack.wait("the watcher's first poll", lambda: stack.watcher_position(WATCHER) is not None, 240)
            stack.wait("the first deliveries run", lambda: stack.runs(DELIVERIES) and stack.idle(DELIVERIES), 300)
            result: dict[str, Any] = {"deliveries": deliveries_phase(stack, world, args, phase, rng)}
            if phase == "poll" and args.crm_events:
                result["crm_to_k3cloud"] = crm_phase(stack, world, args, rng)
            result["polling_cost"] = polling_cost(stack, world, args.cost_window_s)
            return result
    finally:
        fx.stop()
        k3.stop()


def render(results: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [f"# Latency benchmark ({datetime.now().isoformat(timespec='seconds')}, {os.cpu_count()} cores)", "",
             f"K3Cloud poll {args.poll_s} s, Fxiaoke poll {args.fx_poll_s} s, {args.events} audits per phase, "
             f"random pause {args.gap_s[0]}–{args.gap_s[1]} s before each; Airflow settings: bench/airflow_stack.py LATENCY_SETTINGS"
             f"{' with ' + ', '.join(args.airflow_env) if args.airflow_env else ''}.", "",
             "| phase | measure | n | p50 s | p95 s | max s |", "|---|---|---|---|---|---|"]
    for phase, result in results.items():
        d = result["deliveries"]
        for key, label in (("audit_to_note_s", "audit → CRM delivery note"), ("audit_to_message_s", "audit → owner message")):
            s = d[key]
            lines.append(f"| {phase} | {label} | {s['n']} | {s.get('p50')} | {s.get('p95')} | {s.get('max')} |")
        if "crm_to_k3cloud" in result:
            s = result["crm_to_k3cloud"]["crm_edit_to_k3cloud_s"]
            lines.append(f"| {phase} | CRM edit → K3Cloud write | {s['n']} | {s.get('p50')} | {s.get('p95')} | {s.get('max')} |")
    for phase, result in results.items():
        lines += ["", f"Where the time goes ({phase}; from the Airflow metadata DB and the CRM simulator):", "",
                  "| segment | n | p50 s | p95 s | max s |", "|---|---|---|---|---|"]
        lines += [f"| {label} | {s['n']} | {s.get('p50')} | {s.get('p95')} | {s.get('max')} |"
                  for label, s in result["deliveries"]["segments_s"].items() if s["n"]]  # a DAG's own tasks only
    lines += ["", "| phase | K3Cloud queries / h (idle) | Fxiaoke queries / h (idle) | duplicated notes / messages | missing "
              "| triggerer restart (s) | failover: adopted after / audit → note (s) | wall time (s) |", "|---|---|---|---|---|---|---|---|"]
    for phase, result in results.items():
        c, d = result["polling_cost"], result["deliveries"]
        lines.append(f"| {phase} | {c['k3cloud_bill_queries_per_hour']} | {c['fxiaoke_queries_per_hour']} | "
                     f"{d['duplicates']['notes']} / {d['duplicates']['messages']} | {d['missing']} | {d['triggerer_restarts_s'] or '-'} | {d['failover'].get('adopted_after_s', '-')} / {d['failover'].get('audit_to_note_s', '-')} | {result.get('wall_s', '-')} |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=10)
    p.add_argument("--crm-events", type=int, default=5)
    p.add_argument("--poll-s", type=float, default=5.0)
    p.add_argument("--fx-poll-s", type=float, default=20.0)
    p.add_argument("--phases", default="poll,push")
    p.add_argument("--gap-s", default="0,10", help="random pause before each audit/edit: MIN,MAX seconds")
    p.add_argument("--cost-window-s", type=float, default=120.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-failover", dest="failover", action="store_false",
                   help="poll phase: do not start a second triggerer and crash the first one halfway")
    p.add_argument("--airflow-env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment for every Airflow component (e.g. AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME=1 "
                        "to measure Airflow's default); repeatable")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = p.parse_args(argv)
    args.gap_s = tuple(float(x) for x in args.gap_s.split(","))
    bad = [kv for kv in args.airflow_env if "=" not in kv]
    if bad:
        p.error(f"--airflow-env wants KEY=VALUE, got {bad[0]!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM (a stopped `make`, a CI timeout) unwinds like Ctrl-C, so the stack's `finally` stops every component.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    os.environ["AIRFLOW_HOME"] = str(workdir / "client")  # this process only reads connections from env vars
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("airflow").setLevel(logging.WARNING)
    results = {}
    for phase in args.phases.split(","):
        print(f"phase {phase} (logs in {workdir / phase})", flush=True)
        began = time.monotonic()
        results[phase] = run_phase(phase, args, workdir, rng)
        results[phase]["wall_s"] = round(time.monotonic() - began)
    table = render(results, args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latency.json").write_text(json.dumps({"args": {k: v for k, v in vars(args).items() if k != "out"},
                                                       "results": results}, indent=2, default=str))
    (args.out / "latency.md").write_text(table)
    print(table)
    bad = any(r["deliveries"]["duplicates"]["notes"] or r["deliveries"]["duplicates"]["messages"] or r["deliveries"]["missing"]
              for r in results.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""The two simulators for a benchmark run: start, seed N customers and M orders with lines, latency, stats.

The simulators run as real HTTP servers (``tests/simproc.py``), each in its own process, so their CPU time is
not the benchmark's and their service time is reported by themselves (``/_sim/stats``).
"""

from __future__ import annotations

import random
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from tests.simproc import SimulatorProcess, fxiaoke_conn, k3cloud_conn

# 2025-01-01 00:00 +08:00, as the simulator's own demo: far enough in the past that a run "now" is later.
BASE_MS = 1_735_660_800_000
SEED_CHUNK = 5000  # rows per /_sim/seed call (10 000 take well under a second)
CUSTOMER_TYPES = ("KHLB001_SYS", "KHLB002_SYS")
REP = "FSUID_0000000000000000000000000000A002"


@dataclass
class Seeded:
    customers: int
    orders: int
    lines: int


class Simulators:
    """Both simulators; ``env()`` gives the connection variables that point the hooks at them."""

    def __init__(self) -> None:
        self.fx = SimulatorProcess("fxiaoke")
        self.k3 = SimulatorProcess("k3cloud")

    def start(self) -> "Simulators":
        self.fx.start()
        try:
            self.k3.start()
        except Exception:
            self.fx.stop()
            raise
        return self

    def stop(self) -> None:
        self.fx.stop()
        self.k3.stop()

    def env(self) -> dict[str, str]:
        # The hook-level timeout is generous: the bench measures, it does not test timeouts.
        return {
            "AIRFLOW_CONN_FXIAOKE_DEFAULT": fxiaoke_conn(self.fx, timeout=60),
            "AIRFLOW_CONN_K3CLOUD_DEFAULT": k3cloud_conn(self.k3, timeout=60),
        }

    def set_latency(self, latency_ms: int) -> None:
        for sim in (self.fx, self.k3):
            sim.faults({"latency_ms": latency_ms} if latency_ms else {})

    def set_profile(self, fx: dict[str, Any], k3: dict[str, Any]) -> None:
        """Service-time profiles (simulators/service_time.py) for the Fxiaoke and the K3Cloud simulator."""
        self.fx.faults(fx)
        self.k3.faults(k3)

    def reset_stats(self) -> None:
        """Zero the call counters without touching data: the stats reset is a fault-profile-neutral read."""
        self._baseline = {"fx": self.fx.stats(), "k3": self.k3.stats()}

    def stats_since_reset(self) -> dict[str, dict[str, Any]]:
        """Calls and service seconds of each simulator since :meth:`reset_stats` (differences of counters)."""
        now = {"fx": self.fx.stats(), "k3": self.k3.stats()}
        out: dict[str, dict[str, Any]] = {}
        for key, current in now.items():
            before = self._baseline[key]
            calls = {k: v - before["calls"].get(k, 0) for k, v in current["calls"].items()}
            calls = {k: v for k, v in sorted(calls.items()) if v}
            out[key] = {
                "calls": calls,
                "total": current["total"] - before["total"],
                "service_seconds": round(current["service_seconds"] - before["service_seconds"], 4),
                "modelled_seconds": round(current.get("modelled_seconds", 0.0) - before.get("modelled_seconds", 0.0), 4),
            }
        return out

    def seed(self, customers: int, orders: int, seed: int = 7) -> Seeded:
        """N customers and M normal sales orders (1–3 lines each) with the demo's field shapes, deterministic."""
        products = [p for p in self.fx.records("ProductObj") if str(p.get("product_code", "")).startswith("MAT-")
                    and p["product_code"] != "MAT-9999"]
        rng = random.Random(seed)
        accounts = [_account(i, rng) for i in range(1, customers + 1)]
        for start in range(0, len(accounts), SEED_CHUNK):
            self.fx.seed({"objects": {"AccountObj": accounts[start:start + SEED_CHUNK]}})
        n_lines = 0
        batch_orders: list[dict[str, Any]] = []
        batch_lines: list[dict[str, Any]] = []
        for j in range(1, orders + 1):
            account = accounts[(j - 1) % len(accounts)] if accounts else None
            if account is None:
                raise ValueError("orders need at least one customer")
            order, lines = _order(j, account, products, rng)
            batch_orders.append(order)
            batch_lines.extend(lines)
            n_lines += len(lines)
            if len(batch_orders) >= SEED_CHUNK or j == orders:
                self.fx.seed({"objects": {"SalesOrderObj": batch_orders, "SalesOrderProductObj": batch_lines}})
                batch_orders, batch_lines = [], []
        return Seeded(customers, orders, n_lines)


def _hexid(prefix: str, i: int) -> str:
    return f"{prefix}{i:021x}"  # 24 hex characters, as Fxiaoke ids


def _account(i: int, rng: random.Random) -> dict[str, Any]:
    stamp = BASE_MS + (i - 1) // 60 * 60_000  # groups of 60 share a timestamp, as in the field
    return {
        "_id": _hexid("a01", i), "name": f"上海华创机械有限公司{i:06d}", "account_no": f"AC{i:06d}",
        "account_type": rng.choice(["1", "2"]), "tel": f"021-{rng.randrange(10**7, 10**8)}",
        "address": f"上海市工业园区{rng.randrange(1, 300)}号", "field_fnfcA__c": f"CUST-{i:06d}",
        "field_n5V1I__c": rng.choice(CUSTOMER_TYPES), "field_IdOci__c": rng.choice(["01", "02"]),
        "field_zW12m__c": f"陈明{i}", "field_G45nC__c": f"139{rng.randrange(10**8):08d}", "owner": [REP],
        "life_status": "normal", "create_time": stamp, "last_modified_time": stamp,
    }


def _order(j: int, account: dict[str, Any], products: list[dict[str, Any]],
           rng: random.Random) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    stamp = BASE_MS + 86_400_000 + (j - 1) // 60 * 60_000
    order_id = _hexid("b02", j)
    lines = []
    for n, product in enumerate(rng.sample(products, rng.randint(1, 3)), start=1):
        qty = rng.randint(1, 50)
        price = str(product.get("price") or "10.00")
        lines.append({
            "_id": _hexid("c03", j * 4 + n), "name": f"SO{j:06d}-{n}", "order_id": order_id,
            "product_id": product["_id"], "quantity": str(qty), "sales_price": price, "product_price": price,
            "subtotal": f"{qty * float(price):.2f}", "unit": product.get("unit"), "owner": [REP],
            "life_status": "normal", "create_time": stamp, "last_modified_time": stamp,
        })
    amount = f"{sum(float(line['subtotal']) for line in lines):.2f}"
    order = {
        "_id": order_id, "name": f"SO{j:06d}", "account_id": account["_id"], "order_amount": amount,
        "order_time": stamp - 86_400_000, "delivery_date": stamp + 6 * 86_400_000, "order_status": "7",
        "owner": [REP], "life_status": "normal", "create_time": stamp, "last_modified_time": stamp,
    }
    return order, lines


@contextmanager
def running() -> Iterator[Simulators]:
    sims = Simulators().start()
    try:
        yield sims
    finally:
        sims.stop()

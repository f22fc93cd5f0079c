"""Helpers for the hook-vs-simulator tests: hooks with zero retry wait, customer models, call counts."""

from __future__ import annotations

from typing import Any

from simproc import k3cloud_conn

from fxiaoke_k3cloud.hooks.k3cloud import K3CloudHook


def make_hook(sim: Any = None, monkeypatch: Any = None, *, max_attempts: int = 3, auth_mode: str | None = None, **extra: Any) -> K3CloudHook:
    """A hook on ``k3cloud_default`` with zero retry wait; with ``auth_mode``/extras, the connection is rewritten first."""
    if auth_mode is not None or extra:
        monkeypatch.setenv("AIRFLOW_CONN_K3CLOUD_DEFAULT", k3cloud_conn(sim, auth_mode or "password", **extra))
    return K3CloudHook(max_attempts=max_attempts, retry_wait_s=0)


def customer(number: str, name: str | None = None, **fields: Any) -> dict[str, Any]:
    """A BD_Customer Save model that the simulator accepts."""
    return {
        "FCUSTID": 0,
        "FCreateOrgId": {"FNumber": "100"},
        "FUseOrgId": {"FNumber": "100"},
        "FNumber": number,
        "FName": name if name is not None else f"客户 {number}",
        "FTRADINGCURRID": {"FNumber": "PRE001"},
        **fields,
    }


def calls(sim: Any, service: str) -> int:
    """Calls the simulator counted for ``service`` (matched on the last dotted part, case-insensitive)."""
    total = 0
    for key, count in sim.stats()["calls"].items():
        name = key.removesuffix(".common.kdsvc").rsplit(".", 1)[-1].rsplit("/", 1)[-1]
        if name.lower() == service.lower():
            total += count
    return total


def seed_customers(sim: Any, count: int, prefix: str = "CS") -> list[str]:
    numbers = [f"{prefix}{i:04d}" for i in range(count)]
    sim.seed({"forms": {"BD_Customer": [customer(n) for n in numbers]}})
    return numbers

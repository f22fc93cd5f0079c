"""The chaos suite at CI size: every profile, two seeds for the mixed one. A larger size runs by hand:
``python -m tests.reliability.chaos --size 300 --profile mixed --profile timeouts --seed 1 --seed 2``."""

from __future__ import annotations

import json

import pytest

from .chaos import run_scenario

CI_SIZE = 12  # customers (≈ 1.5 orders each, ≈ 2 lines per order); each scenario takes a few seconds


def _check(out) -> None:
    figures = json.dumps(out.as_dict(), ensure_ascii=False)
    assert all(out.settled.values()), figures
    assert out.duplicates == [], figures
    assert out.losses == [], figures
    assert out.wrong == [], figures
    assert sum(out.faults.values()) > 0, "the profile injected no fault the clients saw: " + figures


@pytest.mark.parametrize("profile,seed", [("mixed", 1), ("mixed", 3), ("timeouts", 1), ("sessions", 1), ("quota", 1)])
def test_flows_settle_under_faults_with_no_loss_and_no_duplicate(chaos_world, profile, seed):
    out = run_scenario(chaos_world.fx, chaos_world.k3, chaos_world.store, size=CI_SIZE, seed=seed, profile=profile)
    _check(out)
    if profile == "timeouts":
        assert out.read_backs > 0, "lost answers to applied writes must have been resolved by read-back"
    if profile == "quota":
        assert out.faults.get("fx_quota_exhausted", 0) > 0
    landed_before = {k: v.split("/") for k, v in out.under_faults.items()}
    assert all(a == b for a, b in landed_before.values()), f"most work must happen under faults: {out.under_faults}"


def test_every_audited_notice_gets_exactly_one_owner_message_under_502s(chaos_world):
    out = run_scenario(chaos_world.fx, chaos_world.k3, chaos_world.store, size=15, seed=2, profile="mixed")
    assert out.message_losses == [], json.dumps(out.as_dict(), ensure_ascii=False)

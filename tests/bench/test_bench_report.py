"""The bench's report and README summary render the figures they are given: synthetic phase results, no simulators.

What is checked is the text a reader sees: the 1-thread baseline measured on M saves and scaled to N (and said
so), the largest speed-up the realistic profile allows beside the ≥ 3× target, the tighter fast-profile bound,
and the command that produced the run. The real bench modules render them in a subprocess
(``synthetic_results.py``: under pytest ``bench`` names this package).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rendered() -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")])}
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("synthetic_results.py"))], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_realistic_report_scales_the_one_thread_baseline_and_shows_the_profiles_largest_speedup(rendered):
    fig = rendered["realistic"]
    one, four = fig["baselines"]["1"], fig["baselines"]["4"]
    assert one["scaled_from"] == 2000 and one["wall_at_n_s"] == pytest.approx(10.0 + 180.0 * 5)
    assert four["scaled_from"] is None and four["wall_at_n_s"] == 240.0
    best = fig["max_speedup"]
    # (50 + 40) / 4 ms per record against (50/50 + 40) / 4, from PROFILE
    assert best["ratio"] == pytest.approx(90 / 41)
    assert best["measured_share"] == pytest.approx(240.0 / 150.0 / (90 / 41))

    text = rendered["realistic_markdown"]
    assert "## Realistic profile: the honest bound (10,000 customers, 0 orders)" in text
    assert ("2,000 of 10,000 saved in 190.0 s (read and map 10.0 s + saves 180.0 s; 2,001 K3Cloud calls); measured on "
            "2,000, × 10,000/2,000: 10.0 + 180.0 × 5.00 = **910.0 s** for 10,000 (scaled, not measured)") in text
    assert "10,000 of 10,000 saved in 240.0 s" in text and "scaled, not measured); the customers flow is 6.07× faster" in text
    assert ("per record a 4-thread writer costs 22.50 ms, BatchSave of 50 with 4 in flight 10.25 ms → at most 2.20×"
            in text)
    assert "over a whole 10,000-customer run, where the writer reads before it writes, 2.28×; measured 1.60× = 73% of it" \
        in text

    (speedup,) = [t for t in rendered["realistic_targets"] if "4-thread" in t["target"]]
    assert speedup["measured"] == "1.60× (the profile allows at most 2.20×: 73% of it)"
    assert speedup["result"] == "FAIL" and speedup["note"].startswith("unreachable under the profile: per record")
    (ratio,) = [t for t in rendered["realistic_targets"] if "honest bound" in t["target"]]
    assert ratio["note"] == ""  # 10,000 customers: the target size


def test_fast_bound_shows_the_tighter_figure_of_the_last_throttle_window(rendered):
    b = rendered["target_size"]["bound"]
    # 200 pages: the second 100 (10,000 records) only after the 20 s floor, then 200 BatchSave × 20 ms ÷ 4
    assert b["bound_s"] == pytest.approx(20.0) and b["fx_rate_floor_s"] == 20.0
    assert b["last_window_records"] == 10_000 and b["tight_bound_s"] == pytest.approx(21.0)
    # the wording: the larger call-time term (K3Cloud: 401 × 20 ms ÷ 4) + 201 calls ÷ 5 per s
    assert b["issue_wording_s"] == pytest.approx(401 * 0.02 / 4 + 40.2)
    text = rendered["tight_text"]
    assert text.startswith("Tighter bound 21.0 s (measured ÷ it 1.43×): the last throttle window's 10,000 records")
    assert text.endswith("would give 42.2 s.")
    assert rendered["one_burst_last_window"] == 0  # 100 pages fit one burst: nothing waits


def test_summary_table_renders_the_new_rows_and_the_command(rendered):
    text = rendered["summary"]
    assert "with `make bench` (the defaults) (25 min in all):" in text
    assert ("| realistic profile, customers | 10,000 | 150.0 s | 102.5 s | 1.46× | 910.0 s (measured on 2,000: 190.0 s; "
            "saves × 10,000/2,000) | 240.0 s |") in text
    assert "| fast profile, customers | 20,000 | 30.0 s | 20.0 s (tighter 21.0 s) | 1.50× (1.43× of the tighter) |" in text
    assert ("Largest speed-up over the 4-thread per-record writer the realistic profile allows: per record a 4-thread "
            "writer costs 22.50 ms, BatchSave of 50 with 4 in flight 10.25 ms → at most 2.20× (2.28× over a whole "
            "10,000-customer run, the writer reading before it writes); measured 1.60× = 73% of it.") in text
    assert "The issue's ≥ 3× is unreachable under the profile." in text
    assert "| realistic customers: speed-up over a 4-thread per-record writer | 1.60× (the profile allows" in text

    commands = rendered["commands"]
    assert commands["default"] == "`make bench` (the defaults)"
    assert commands["smaller"] == '`make bench BENCH_ARGS="--realistic-customers 300 --single-thread-records 50"`'
    assert commands["old"].startswith("`python -m bench --customers 2000 --orders 2000")  # a result from before

"""Smoke test of ``python -m bench`` at a tiny size: it runs end to end and writes its results (not timings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(900)  # ~4 min here, 3 × that on a loaded 2-core machine: three profiles' worth of processes
def test_bench_writes_json_and_markdown_with_every_figure(tmp_path):
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--customers", "20", "--orders", "10", "--latency-ms", "0",
         "--transform-records", "2000", "--instructions-records", "0", "--memory-sizes", "200", "--target-customers",
         "300", "--realistic-customers", "30", "--single-thread-records", "10", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=840,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((out / "latest.json").read_text())
    markdown = (out / "latest.md").read_text()
    assert markdown in proc.stdout  # the same table is printed

    assert results["machine"]["cores"] >= 1 and results["machine"]["python"] and results["machine"]["date"]
    assert results["seeded"]["customers"] == 20
    customers = results["flows"]["customers"]
    assert customers["records"] == 20 and customers["written"] == 20
    assert customers["outcomes"] == {"created": 20}
    for key in ("wall_s", "records_per_s", "fx_reads_per_100_read", "k3_writes_per_record", "peak_rss_mb", "ratio_to_bound"):
        assert customers[key] > 0, key
    # 20 customers: one token call and one query page; one login and one BatchSave. No logout: the phases share
    # the deployment's K3Cloud session through the audit store, as task processes do (hooks/k3cloud_session.py).
    assert customers["calls"]["k3"]["calls"] == {"BatchSave": 1, "ValidateUser": 1}
    # one page of 20 records, the voided ones asked for in the same query (issue 14 #14), and the hourly query
    # for records modified "in the future"
    assert customers["calls"]["fx"]["calls"]["/cgi/crm/v2/data/query"] == 2
    assert customers["bound"]["fx_min_calls"] == 2 and customers["bound"]["k3_min_calls"] == 2

    noop, resync = results["second_pass"]["customers:noop"], results["second_pass"]["customers:resync"]
    assert noop["writes"] == 0 and noop["records"] == 0
    assert resync["writes"] == 0 and resync["outcomes"] == {"unchanged": 20}

    baseline = results["baseline"]
    assert baseline["saved"] == 20 and baseline["calls"]["k3"]["calls"]["Save"] == 20
    assert results["speedup"] > 0
    assert results["transform"]["packages"] == 2000
    assert results["transform"]["repeats"] == 5 and len(results["transform"]["cpu_s"]) == 5
    assert results["transform"]["cpu_us_per_record"] > 0  # the figure load moves less than wall time
    assert "skipped" in results["transform"]["instructions"]  # valgrind's count not asked here (minutes)
    assert [row["n"] for row in results["memory"]["rows"]] == [200]
    assert set(results["memory"]["rows"][0]["steps"]) == {"stage", "transform", "load"}
    names = {t["target"] for t in results["targets"]}
    assert any("write calls per record" in n for n in names) and any("no-op" in n for n in names)
    assert {t["result"] for t in results["targets"]} <= {"PASS", "FAIL", "n/a"}
    if "not built yet" in results["orders"]:
        assert "orders" not in results["flows"]
    real = results["realistic"]  # the service-time profile: same flows, honest bound, both per-record baselines
    # --realistic-customers 30: its own simulator data, apart from the fast profile's 20 customers
    assert real["seeded"]["customers"] == 30 and real["seeded"]["orders"] == (10 if "orders" in results["flows"] else 0)
    assert real["flows"]["customers"]["written"] == 30 and real["flows"]["customers"]["status"] == "success"
    raw = results["raw_realistic"]["flows"]["customers"]["first"]["api"]
    assert raw["k3"]["modelled_seconds"] >= 30 * 0.040 - 1e-6  # 30 saved records × 40 ms were really served
    bound = real["flows"]["customers"]["bound"]
    assert bound["bound_s"] == max(bound["fx_s"], bound["k3_s"]) > 0
    # both baselines read all 30; the 1-thread one saves the first 10 (--single-thread-records) and is scaled
    assert {b["threads"]: (b["records"], b["saved"]) for b in real["baselines"].values()} == {1: (30, 10), 4: (30, 30)}
    one = real["baselines"]["1"]
    assert one["scaled_from"] == 10 and one["wall_at_n_s"] > one["wall_s"]
    assert "measured on 10, × 30/10" in markdown and "scaled, not measured" in markdown
    assert real["max_speedup"]["ratio"] < 3  # the profile's own ceiling, printed beside the ≥ 3× target
    assert any(t["target"].startswith("realistic customers: speed-up over a 4-thread") for t in results["targets"])
    for heading in ("## First sync", "## Second pass", "## Baseline", "## Mapping engine and memory",
                    "## Realistic profile: the honest bound", "## Targets"):
        assert heading in markdown
    target = results["target_size"]  # the target-size fast run and the everyday runs, counted by the simulators
    assert target["customers"] == 300 and target["first"]["written"] == 300 and target["changed"] == 3
    assert target["bound"]["bound_s"] == max(target["bound"]["fx_s"], target["bound"]["k3_s"]) > 0
    noop, change = target["runs"]["noop"], target["runs"]["change"]
    assert noop["calls"]["k3"] == {} and noop["task_process"]["tasks"] == 2  # short-circuit: no K3Cloud session
    assert "/cgi/corpAccessToken/get/V2" not in noop["calls"]["fx"]  # the phases share the deployment's token
    assert change["written"] == 3 and change["task_process"]["tasks"] == 4
    # 3 updates: one UnAudit (also the presence check) and one BatchSave on the deployment's session
    assert change["calls"]["k3"] == {"UnAudit": 1, "BatchSave": 1}, change["calls"]
    assert any(t["target"].startswith("1 % changed") for t in results["targets"])
    summary = subprocess.run([sys.executable, "-m", "bench.summary", str(out / "latest.json")], cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
    assert summary.returncode == 0, summary.stderr
    assert "| fast profile, customers | 300 |" in summary.stdout and "1 % of 300 changed" in summary.stdout
    assert "| realistic profile, customers | 30 |" in summary.stdout and "(measured on 10: " in summary.stdout
    assert "Largest speed-up over the 4-thread per-record writer" in summary.stdout
    assert summary.stdout.count("PASS") + summary.stdout.count("FAIL") + summary.stdout.count("n/a") >= len(results["targets"])



def test_the_mapping_bench_counts_instructions_only_with_valgrind_and_says_so_without(tmp_path):
    # PATH without valgrind (the interpreter's own folder only): the count is skipped with a message, the rest runs.
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    proc = subprocess.run([sys.executable, "-m", "bench.mapping", "--records", "1000", "--repeats", "1", "--rounds", "1",
                           "--instructions-records", "1000"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (row,) = [line for line in proc.stdout.splitlines() if "(this checkout)" in line]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert float(cells[2]) > 0  # CPU µs per record
    assert cells[3] == "valgrind is not installed (apt-get install valgrind), instructions not counted"

"""The README's performance table from a bench result: ``python -m bench.summary [bench/results/latest.json]``.

Prints Markdown: the first syncs against the honest bound and both per-record baselines, the everyday runs, memory
and mapping, and every target with PASS/FAIL. Paste it over the table in README.md "Benchmark" after a new
``make bench`` (the numbers move 2× with the machine's load; the ratios much less).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench import everyday, realistic, report

ROOT = Path(__file__).resolve().parents[1]


def _s(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f} s"


def _baseline(b: dict[str, Any] | None) -> str:
    """A baseline's time at the flow's size; one measured on fewer saves says so (older results: measured only)."""
    if not b:
        return "—"
    if b.get("scaled_from"):
        return realistic.baseline_text(b, b["records"])
    return f"{b['wall_s']:.1f} s"


def table(r: dict[str, Any]) -> list[str]:
    a, m = r["args"], r["machine"]
    lines = [f"Measured {m['date']} ({m['cores']} cores, Python {m['python']}) with {report.command(a)} "
             f"({r['total_seconds'] / 60:.0f} min in all):", "",
             "| first sync | records | this project | honest bound | ÷ bound | 1-thread Save per record | "
             "4-thread Save per record |", "|---|---|---|---|---|---|---|"]
    real = r.get("realistic")
    if real:
        base = real["baselines"]
        for flow, f in real["flows"].items():
            one = base.get(1) or base.get("1")
            four = base.get(4) or base.get("4")
            b1 = _baseline(one) if flow == "customers" else "—"
            b4 = _baseline(four) if flow == "customers" else "—"
            lines.append(f"| realistic profile, {flow} | {f['records']:,} | {f['wall_s']:.1f} s | "
                         f"{f['bound']['bound_s']:.1f} s | {f['ratio_to_bound']:.2f}× | {b1} | {b4} |")
    t = r.get("target_size")
    if t:
        tb = t["bound"]
        tight = tb.get("tight_bound_s")
        shown = tight is not None and tight > tb["bound_s"]
        cell = f"{tb['bound_s']:.1f} s" + (f" (tighter {tight:.1f} s)" if shown else "")
        ratio = f"{t['ratio_to_bound']:.2f}×" + (f" ({t['first']['wall_s'] / tight:.2f}× of the tighter)" if shown else "")
        lines.append(f"| fast profile, customers | {t['customers']:,} | {t['first']['wall_s']:.1f} s | {cell} | "
                     f"{ratio} | — | — |")
    lines.append("")
    best = (real or {}).get("max_speedup")
    if best:
        four = real["speedup_vs_baseline"].get(4) or real["speedup_vs_baseline"].get("4")
        measured = f"measured {four:.2f}× = {best['measured_share']:.0%} of it" if four else "not measured"
        lines.append(f"Largest speed-up over the {best['threads']}-thread per-record writer the realistic profile allows: "
                     f"{realistic.max_speedup_text(best)} ({best['whole_run_ratio']:.2f}× over a whole "
                     f"{best['customers']:,}-customer run, the writer reading before it writes); {measured}. The "
                     f"issue's ≥ {realistic.SPEEDUP:g}× is {'un' if best['ratio'] < realistic.SPEEDUP else ''}reachable "
                     "under the profile.")
        lines.append("")
    if t and t["bound"].get("tight_bound_s") is not None:
        lines.append(f"Fast profile, {t['customers']:,} customers. {everyday.tight_text(t)} (bench/README.md, "
                     "\"How the bound reads the rate floor\").")
        lines.append("")
    if real:
        p = real["profile"]
        lines.append(f"Realistic profile: K3Cloud {p['k3']['latency_ms']:g} ms per call + {p['k3']['per_record_ms']:g} ms "
                     f"per record saved, {p['k3']['max_in_flight']:g} requests in flight per user; Fxiaoke "
                     f"{p['fx']['latency_ms']:g} ms per call + {p['fx']['per_row_ms']:g} ms per row. Fast profile: the "
                     f"bare simulators + {a['latency_ms']} ms per call. Honest bound = max(Fxiaoke, K3Cloud) with extract "
                     "overlapped with load; each = minimal calls × per-call time ÷ allowed concurrency (4 per API: the "
                     "pools' slots) + records × per-record time ÷ 4; Fxiaoke never below the rate floor of 100 calls per "
                     "20 s per endpoint (spec §6.3).")
        lines.append("")
    if t:
        lines += ["| everyday run (fast profile) | API calls, both systems | task-process time |", "|---|---|---|"]
        for kind, label in (("noop", "nothing changed"), ("change", f"1 % of {t['customers']:,} changed")):
            v = t["runs"][kind]
            tp = v["task_process"]
            lines.append(f"| {label} | {v['api_calls_total']} | {tp['total_s']:.1f} s ({tp['tasks']} tasks: steps "
                         f"{tp['steps_s']:.2f} s + {tp['startup_s']:.1f} s start-up each) |")
        lines.append("")
    mem = r["memory"]["rows"]
    tr = r["transform"]
    if mem:
        big = mem[-1]
        lines.append(f"Peak memory at {big['n']:,} customers: {big['peak_rss_mb']:.0f} MB (largest step process, "
                     f"{big['peak_step']}; ru_maxrss). Mapping: {tr.get('median_records_per_s', tr['records_per_s']):,.0f} "
                     f"records/s (median of {tr.get('repeats', 1)} on {tr['n']:,}).")
        lines.append("")
    lines += ["| target | measured | limit | result |", "|---|---|---|---|"]
    for tg in r["targets"]:
        lines.append(f"| {tg['target']} | {tg['measured']} | {tg['limit']} | {tg['result']}"
                     f"{' — ' + tg['note'] if tg['note'] else ''} |")
    return lines


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else ROOT / "bench" / "results" / "latest.json"
    print("\n".join(table(json.loads(path.read_text()))))


if __name__ == "__main__":
    main()

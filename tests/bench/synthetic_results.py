"""Synthetic phase results rendered by the real bench modules, printed as JSON: ``test_bench_report.py`` runs this.

A script of its own because under pytest ``bench`` is this test package (``tests/`` is on ``sys.path``), not the
benchmark; run with the checkout and ``plugins/`` on ``PYTHONPATH``.
"""

from __future__ import annotations

import json

from bench import everyday, realistic, report, summary
from bench.runner import parse_args

CUSTOMERS = 10_000


def _api(fx: dict[str, int], k3: dict[str, int], fx_service: float = 0.0, k3_service: float = 0.0) -> dict:
    return {"fx": {"calls": fx, "total": sum(fx.values()), "service_seconds": fx_service, "modelled_seconds": 0.0},
            "k3": {"calls": k3, "total": sum(k3.values()), "service_seconds": k3_service, "modelled_seconds": 0.0}}


def _flow(extracted: int, wall_s: float, api: dict) -> dict:
    return {"extracted": extracted, "counts": {"created": extracted} if extracted else {}, "status": "success",
            "wall_s": wall_s, "step_seconds": {"extract": 1.0, "load": wall_s - 1.0}, "api": api, "import_s": 1.5}


def _baseline(threads: int, wall_s: float, read_s: float, attempted: int) -> dict:
    return {"threads": threads, "wall_s": wall_s, "read_s": read_s, "save_s": wall_s - read_s, "extracted": CUSTOMERS,
            "attempted": attempted, "saved": attempted, "failed": 0, "api": _api({}, {"Save": attempted + 1})}


def realistic_raw() -> dict:
    first = _flow(CUSTOMERS, 150.0, _api({"/cgi/crm/v2/data/query": 101}, {"ValidateUser": 1, "BatchSave": 200}))
    noop = _flow(0, 0.2, _api({"/cgi/crm/v2/data/query": 1}, {}))
    return {"profile": realistic.PROFILE, "allowed": realistic.ALLOWED, "single_thread_records": 2000,
            "seeded": {"customers": CUSTOMERS, "orders": 0, "lines": 0},
            "flows": {"customers": {"first": first, "noop": noop}},
            # 1 thread: 2,000 of 10,000 saved in 190 s, 10 s of it reading; 4 threads: all 10,000 in 240 s
            "baselines": {1: _baseline(1, 190.0, 10.0, 2000), 4: _baseline(4, 240.0, 10.0, CUSTOMERS)}}


def target_raw() -> dict:
    # 20,000 customers, fast profile + 20 ms, simulators answering in no time: 200 pages + token, 400 BatchSave + login
    first = _flow(20_000, 30.0, _api({"/cgi/corpAccessToken/get/V2": 1, "/cgi/crm/v2/data/query": 200},
                                     {"ValidateUser": 1, "BatchSave": 400}))
    noop = _flow(0, 0.1, _api({"/cgi/crm/v2/data/query": 1}, {}))
    change = _flow(200, 0.5, _api({"/cgi/crm/v2/data/query": 2}, {"UnAudit": 2, "BatchSave": 2}))
    return {"customers": 20_000, "changed": 200, "first": first, "noop": noop, "change": change}


def main() -> None:
    real, target = realistic.figures(realistic_raw()), everyday.figures(target_raw(), 20)
    args = vars(parse_args([])) | {"out": "bench/results"}
    results = {"args": args, "machine": {"date": "2026-12-04T00:00:00+00:00", "cores": 2, "python": "3.11.7"},
               "total_seconds": 1500.0, "realistic": real, "target_size": target,
               "memory": {"rows": []}, "transform": {"records_per_s": 1.0},
               "targets": realistic.targets(real) + everyday.targets(target)}
    old = {k: v for k, v in args.items() if k not in ("realistic_customers", "single_thread_records")}
    print(json.dumps({
        "realistic": real, "realistic_markdown": "\n".join(realistic.markdown(real)),
        "realistic_targets": realistic.targets(real), "target_size": target, "tight_text": everyday.tight_text(target),
        "one_burst_last_window": everyday.last_window_records(pages=100, records=10_000),
        "summary": "\n".join(summary.table(results)),
        "commands": {"default": report.command(args), "old": report.command(old),
                     "smaller": report.command(args | {"realistic_customers": 300, "single_thread_records": 50})},
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()

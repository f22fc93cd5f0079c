"""Throughput of the customer transform on 100k generated records: printed, not asserted (benchmarks prove speed)."""

from __future__ import annotations

import time

from .crm_records import accounts

from fxiaoke_k3cloud.mapping import transform


def test_customer_transform_throughput_100k_prints_records_per_second(customers_mapping, capsys):
    frame = accounts(100_000)
    transform(customers_mapping, frame.head(1000))  # compile the plan and warm pandas up outside the timing
    started = time.perf_counter()
    result = transform(customers_mapping, frame)
    elapsed = time.perf_counter() - started
    models_started = time.perf_counter()
    for package in result.packages:
        package.model  # noqa: B018 - build every full create Model once, as a batched load does
    models_elapsed = time.perf_counter() - models_started
    assert len(result.packages) == 100_000  # correctness, not speed
    with capsys.disabled():
        print(f"\ncustomer transform: {len(frame) / elapsed:,.0f} records/s ({elapsed:.2f} s for {len(frame):,}); "
              f"+ full create Models for all: {len(frame) / (elapsed + models_elapsed):,.0f} records/s")

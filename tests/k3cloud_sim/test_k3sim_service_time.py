"""The service-time model (simulators/service_time.py): per record written, per row read, requests in flight."""

from __future__ import annotations

import threading
import time

from .k3sim_helpers import K3Http, customer_model

QUERY = {"FormId": "BD_Customer", "FieldKeys": "FNumber", "FilterString": "", "Limit": 2000}


def test_per_record_time_is_modelled_for_what_a_batch_saved(k3: K3Http, k3cloud) -> None:
    k3cloud.faults({"per_record_ms": 30})
    before = k3cloud.stats().get("modelled_seconds", 0.0)
    started = time.perf_counter()
    result = k3.call("BatchSave", "BD_Customer", {"Model": [customer_model(f"ST{i}") for i in range(5)]})["Result"]
    elapsed = time.perf_counter() - started
    assert len(result["ResponseStatus"]["SuccessEntitys"]) == 5
    modelled = k3cloud.stats()["modelled_seconds"] - before
    assert abs(modelled - 0.150) < 1e-6  # 5 saved records × 30 ms
    assert elapsed >= 0.150  # the answer really waited for it


def test_per_row_time_follows_the_rows_a_query_returned(k3: K3Http, k3cloud) -> None:
    for i in range(4):
        k3.save("BD_Customer", customer_model(f"SR{i}"))
    k3cloud.faults({"per_row_ms": 10})
    before = k3cloud.stats()["modelled_seconds"]
    rows = k3.call("ExecuteBillQuery", data=QUERY)
    assert len(rows) >= 4
    assert abs(k3cloud.stats()["modelled_seconds"] - before - len(rows) * 0.010) < 1e-6
    k3cloud.faults({})
    before = k3cloud.stats()["modelled_seconds"]
    k3.call("ExecuteBillQuery", data=QUERY)
    assert k3cloud.stats()["modelled_seconds"] == before  # the fast profile models nothing


def test_requests_beyond_max_in_flight_wait_their_turn(k3: K3Http, k3cloud) -> None:
    k3cloud.faults({"latency_ms": 0, "per_record_ms": 200, "max_in_flight": 1})
    spans: list[tuple[float, float]] = []

    def save(i: int) -> None:
        started = time.perf_counter()
        k3.call("Save", "BD_Customer", {"Model": customer_model(f"MF{i}")})
        spans.append((started, time.perf_counter()))

    threads = [threading.Thread(target=save, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # One at a time: the last of three answers comes after three service times, not one.
    assert max(end for _, end in spans) - min(start for start, _ in spans) >= 0.6
    k3cloud.faults({"per_record_ms": 200, "max_in_flight": 3})
    spans.clear()
    threads = [threading.Thread(target=save, args=(i + 10,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(end for _, end in spans) - min(start for start, _ in spans) < 0.6  # three in flight overlap

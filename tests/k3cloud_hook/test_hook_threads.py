"""One K3CloudHook shared by several threads (a load's writers): one client, one login, one re-login."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from fxiaoke_k3cloud.errors import ConfigError

from .helpers import calls, customer, make_hook


def test_threads_that_start_together_build_one_client_and_log_in_once(k3cloud):
    hook = make_hook()
    start = threading.Barrier(8)

    def first_use(i: int) -> int:
        start.wait()
        client = hook.client
        hook.save("BD_Customer", customer(f"TH{i:03d}"))
        return id(client)

    with ThreadPoolExecutor(max_workers=8) as pool:
        clients = set(pool.map(first_use, range(8)))
    assert len(clients) == 1
    assert calls(k3cloud, "ValidateUser") == 1
    assert Counter(r["FNumber"] for r in k3cloud.records("BD_Customer") if r["FNumber"].startswith("TH")) == \
        Counter(f"TH{i:03d}" for i in range(8))


def test_writers_that_lose_the_session_together_log_in_once_and_write_each_document_once(k3cloud):
    hook = make_hook()
    hook.client.login()
    k3cloud.faults({"latency_ms": 50})  # the four BatchSaves are in flight together when the session goes
    k3cloud.expire()

    def write(batch: int) -> list[bool]:
        return [row.ok for row in hook.batch_save("BD_Customer", [customer(f"SL{batch}{i:02d}") for i in range(10)])]

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(write, range(4)))
    assert results == [[True] * 10] * 4
    assert calls(k3cloud, "ValidateUser") == 2  # the first login and exactly one re-login for four threads
    numbers = Counter(r["FNumber"] for r in k3cloud.records("BD_Customer") if r["FNumber"].startswith("SL"))
    assert numbers == Counter(f"SL{b}{i:02d}" for b in range(4) for i in range(10))  # each once
    assert k3cloud.stats()["max_in_flight_seen"] >= 2  # they really were in flight together


@pytest.mark.parametrize("value, expected", [(None, 4), ("", 4), (1, 1), ("8", 8), (32, 32), (2.0, 2)])
def test_max_in_flight_comes_from_the_connection(k3cloud, monkeypatch, value, expected):
    extra = {} if value is None else {"max_in_flight": value}
    assert make_hook(k3cloud, monkeypatch, **extra).max_in_flight == expected


@pytest.mark.parametrize("value", [0, -1, 33, "four", 2.5, True])
def test_a_bad_max_in_flight_is_a_config_error_naming_the_extra(k3cloud, monkeypatch, value):
    with pytest.raises(ConfigError, match=r"k3cloud_default.*max_in_flight.*1 to 32"):
        make_hook(k3cloud, monkeypatch, max_in_flight=value).max_in_flight

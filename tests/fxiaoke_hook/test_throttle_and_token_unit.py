"""Throttle with an injected clock; token cache refresh rules with a fake fetch (no network)."""

from __future__ import annotations

import threading

from fxiaoke_hook.helpers import FakeClock
from fxiaoke_k3cloud.hooks.fxiaoke_throttle import SlidingWindowThrottle
from fxiaoke_k3cloud.hooks.fxiaoke_token import TokenCache


def test_throttle_allows_the_limit_then_waits_for_the_window_to_slide():
    clock = FakeClock()
    throttle = SlidingWindowThrottle(3, 20.0, clock=clock, sleep=clock.sleep)
    assert [throttle.acquire("/q") for _ in range(3)] == [0.0, 0.0, 0.0]
    clock.now += 5
    assert throttle.acquire("/q") == 15.0  # the oldest call leaves the window 20 s after it was made
    assert clock.slept == [15.0]


def test_throttle_counts_each_path_separately():
    clock = FakeClock()
    throttle = SlidingWindowThrottle(1, 20.0, clock=clock, sleep=clock.sleep)
    assert throttle.acquire("/a") == 0.0
    assert throttle.acquire("/b") == 0.0
    assert throttle.acquire("/a") == 20.0


def test_throttle_never_exceeds_the_limit_in_any_window():
    clock = FakeClock()
    throttle = SlidingWindowThrottle(4, 20.0, clock=clock, sleep=clock.sleep)
    stamps = []
    for _ in range(20):
        throttle.acquire("/q")
        stamps.append(clock.now)
        clock.now += 1.5
    assert all(sum(1 for t in stamps if s <= t < s + 20.0) <= 4 for s in stamps)


def fetcher(clock: FakeClock, expires_in: float = 7200):
    calls = []

    def fetch():
        calls.append(clock.now)
        return (f"TOKEN{len(calls)}", "FSCID_X", expires_in)

    return fetch, calls


def test_token_is_reused_until_6600_s_then_refreshed():
    clock = FakeClock()
    cache = TokenCache()
    fetch, calls = fetcher(clock)
    key = ("h", "app", "perm")
    assert cache.get(key, fetch, clock=clock, sleep=clock.sleep).access_token == "TOKEN1"
    clock.now += 6599
    assert cache.get(key, fetch, clock=clock, sleep=clock.sleep).access_token == "TOKEN1"
    clock.now += 1
    assert cache.get(key, fetch, clock=clock, sleep=clock.sleep).access_token == "TOKEN2"
    assert len(calls) == 2


def test_token_with_short_remaining_lifetime_is_refreshed_early():
    clock = FakeClock()
    cache = TokenCache()
    fetch, calls = fetcher(clock, expires_in=1000)  # issued 6200 s ago by the server
    key = ("h", "app", "perm")
    cache.get(key, fetch, clock=clock, sleep=clock.sleep)
    clock.now += 401  # remaining 599 s < 600 s
    cache.get(key, fetch, clock=clock, sleep=clock.sleep)
    assert len(calls) == 2


def test_refused_token_is_replaced_once_even_when_many_threads_report_it():
    clock = FakeClock()
    cache = TokenCache()
    fetch, calls = fetcher(clock)
    key = ("h", "app", "perm")
    cache.get(key, fetch, clock=clock, sleep=clock.sleep)
    threads = [
        threading.Thread(target=cache.get, args=(key, fetch), kwargs={"clock": clock, "sleep": clock.sleep, "refused": "TOKEN1"})
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 2  # one initial fetch, one replacement shared by all eight


def test_token_calls_stay_under_ten_per_minute():
    clock = FakeClock()
    cache = TokenCache()
    fetch, calls = fetcher(clock)
    key = ("h", "app", "perm")
    for i in range(12):
        cache.get(key, fetch, clock=clock, sleep=clock.sleep, refused=f"TOKEN{i}")
    assert len(calls) == 12
    assert all(sum(1 for t in calls if s <= t < s + 60) <= 9 for s in calls)


def test_tokens_are_kept_per_app():
    clock = FakeClock()
    cache = TokenCache()
    fetch, calls = fetcher(clock)
    cache.get(("h", "app1", "p"), fetch, clock=clock, sleep=clock.sleep)
    cache.get(("h", "app2", "p"), fetch, clock=clock, sleep=clock.sleep)
    cache.get(("h", "app1", "p"), fetch, clock=clock, sleep=clock.sleep)
    assert len(calls) == 2

"""Every test starts with empty process-wide caches (tokens, resolved user ids, throttle windows)."""

from __future__ import annotations

import pytest

from fxiaoke_k3cloud.hooks.fxiaoke_throttle import clear_shared_throttles
from fxiaoke_k3cloud.hooks.fxiaoke_token import clear_process_caches


@pytest.fixture(autouse=True)
def _clean_process_caches():
    clear_process_caches()
    clear_shared_throttles()
    yield
    clear_process_caches()
    clear_shared_throttles()

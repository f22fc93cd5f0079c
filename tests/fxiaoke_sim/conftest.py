"""Fixtures for the simulator's own tests: ``api`` is a raw-HTTP client of a freshly reset simulator."""

from __future__ import annotations

import pytest

from .client import Api


@pytest.fixture
def api(fxiaoke) -> Api:
    return Api(fxiaoke.base_url)

"""Fixtures for the K3Cloud simulator tests (the ``k3cloud`` fixture comes from tests/conftest.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The simulators package lives at the repository root (tests import its pure functions, e.g. signatures).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from .k3sim_helpers import K3Http  # noqa: E402


@pytest.fixture
def k3(k3cloud) -> K3Http:
    """A logged-in raw client against a freshly reset simulator."""
    client = K3Http(k3cloud.base_url)
    client.login()
    return client

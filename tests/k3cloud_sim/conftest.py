"""Fixtures for the K3Cloud simulator tests (the ``k3cloud`` fixture comes from tests/conftest.py)."""

from __future__ import annotations

import pytest

from k3sim_helpers import K3Http


@pytest.fixture
def k3(k3cloud) -> K3Http:
    """A logged-in raw client against a freshly reset simulator."""
    client = K3Http(k3cloud.base_url)
    client.login()
    return client

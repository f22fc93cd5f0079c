"""Fixtures: the shipped mapping files, loaded once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from fxiaoke_k3cloud.mapping import FlowMapping, load_mapping

MAPPINGS = Path(__file__).resolve().parents[2] / "include" / "mappings"


@pytest.fixture(scope="session")
def customers_mapping() -> FlowMapping:
    return load_mapping(MAPPINGS / "customers.yaml")


@pytest.fixture(scope="session")
def orders_mapping() -> FlowMapping:
    return load_mapping(MAPPINGS / "sales_orders.yaml")

"""Security tests share the reliability suite's world (simulators, chaos connections, a temp audit store)."""

from __future__ import annotations

from reliability.conftest import chaos_world  # noqa: F401  (fixture)

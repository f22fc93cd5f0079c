"""Kingdee K3Cloud (金蝶云星空) Web API simulator: ``create_app(config)`` builds one in-memory instance."""

from __future__ import annotations

from .app import create_app
from .config import SimConfig

__all__ = ["SimConfig", "create_app"]

"""Fxiaoke (纷享销客 / ShareCRM) OpenAPI simulator: the legacy ``/cgi/...`` protocol, in memory.

``create_app(SimConfig(...))`` builds an independent instance; ``python -m simulators.fxiaoke`` serves one.
See README.md in this folder for behaviour, codes and the admin API.
"""

from __future__ import annotations

from .app import create_app
from .config import SimConfig, Switches

__all__ = ["SimConfig", "Switches", "create_app"]

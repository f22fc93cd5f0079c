"""Every API call this process sent, per system and path: what a flow run records as its ``api_calls``.

The hooks add to it as they send (``FxiaokeHook`` through its ``CallCounter``, ``K3CloudHook`` in its transport);
the flow's task wrapper (``flows.run_notes``) takes the calls of each task and adds them to the run's row, so the
console can show API calls today against the CRM's daily quota. Process-wide and thread-safe; standard library only.
"""

from __future__ import annotations

import threading
from collections import Counter

_LOCK = threading.Lock()
_CALLS: dict[str, Counter[str]] = {}


def add(system: str, path: str) -> None:
    """One request sent to ``system`` (``fxiaoke`` | ``k3cloud``) on ``path`` (an endpoint, no query, no secret)."""
    with _LOCK:
        _CALLS.setdefault(system, Counter())[path] += 1


def take() -> dict[str, dict[str, object]]:
    """The calls since the last ``take()`` as ``{system: {"total": n, "by_path": {path: n}}}``, and start again."""
    with _LOCK:
        taken = {system: {"total": sum(paths.values()), "by_path": dict(paths)} for system, paths in _CALLS.items()
                 if paths}
        _CALLS.clear()
    return taken

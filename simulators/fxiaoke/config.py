"""Simulator configuration: credentials (development defaults from simulators/README.md) and behaviour switches."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

# Development defaults, printed on start; not secrets (simulators/README.md).
DEFAULT_APP_ID = "FSAID_131b579"
DEFAULT_APP_SECRET = "sim-app-secret-0123456789abcdef"
DEFAULT_PERMANENT_CODE = "SIMPERMANENTCODE0123456789ABCDEF"
DEFAULT_CORP_ID = "FSCID_00000000000000000000000000C0FFEE"
DEFAULT_OPEN_USER_ID = "FSUID_0000000000000000000000000000A001"
DEFAULT_MOBILE = "13800000000"

# Demo records are stamped relative to this instant (2025-01-01 00:00 +08:00) so that a given N always yields
# the same records; callers wanting "recent" demo data pass another base time.
DEFAULT_DEMO_BASE_MS = 1735660800000


@dataclass(frozen=True)
class Switches:
    """Behaviours the spec leaves open (§10); defaults are the lenient reading, strict ones are opt-in."""

    strict_limit: bool = False  # limit > 100: clamp (False) or parameter error (True)
    strict_prefix: bool = False  # custom object on the preset path (or vice versa): serve (False) or error (True)
    duplicate_rule: bool = False  # AccountObj create with an existing name fails with a "duplicate" message

    def updated(self, **changes: bool) -> "Switches":
        unknown = set(changes) - set(self.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown switch(es) {sorted(unknown)}; allowed: {sorted(self.__dataclass_fields__)}")
        return replace(self, **{k: bool(v) for k, v in changes.items()})


@dataclass(frozen=True)
class SimConfig:
    app_id: str = DEFAULT_APP_ID
    app_secret: str = DEFAULT_APP_SECRET
    permanent_code: str = DEFAULT_PERMANENT_CODE
    corp_id: str = DEFAULT_CORP_ID
    open_user_id: str = DEFAULT_OPEN_USER_ID
    mobile: str = DEFAULT_MOBILE
    # Enterprise account ("ea"), used in traceIds and the 30003 message.
    enterprise_account: str = "simcorp"
    seed_demo: int = 0
    demo_base_ms: int = DEFAULT_DEMO_BASE_MS
    faults: dict = field(default_factory=dict)
    switches: Switches = field(default_factory=Switches)

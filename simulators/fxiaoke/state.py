"""Everything one simulator instance holds; created by the app factory, never module-global."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import service_time
from .auth import TokenManager
from .clock import Clock
from .config import SimConfig, Switches
from .faults import Faults
from .fixtures import generate_demo, load_base
from .store import Store


Stats = service_time.CallStats  # calls counted per API path


@dataclass
class CallContext:
    """One API call: its path, whether it came in under ``/custom/``, the acting user and its traceId."""

    path: str
    custom_prefix: bool
    user: str | None = None
    trace: str = ""


class SimState:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.clock = Clock()
        self.reset()
        if config.seed_demo:
            generate_demo(self.store, config, config.seed_demo)
        if config.faults:
            self.faults = Faults(config.faults, self.clock, config.enterprise_account)

    def reset(self) -> None:
        """Drop data, tokens, faults, counters and clock offset; reload base data (simulators.md)."""
        self.clock.reset()
        self.store = Store()
        self.switches = self.config.switches
        load_base(self.store, self.config)
        self.tokens = TokenManager(self.config, self.clock)
        self.faults = Faults({}, self.clock, self.config.enterprise_account)
        self.stats = Stats()

    @property
    def switches(self) -> Switches:
        return self._switches

    @switches.setter
    def switches(self, value: Switches) -> None:
        self._switches = value
        self.store.id_format = value.id_format

    def employee_number(self, open_user_id: str | None) -> int | str:
        emp = self.store.employees.get(open_user_id or "")
        return emp["employeeId"] if emp else -1000

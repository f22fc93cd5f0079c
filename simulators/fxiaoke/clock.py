"""An injectable clock: wall time plus an offset that tests move with ``POST /_sim/clock``."""

from __future__ import annotations

import time


class Clock:
    def __init__(self) -> None:
        self.offset_s = 0.0

    def now(self) -> float:
        """Seconds since the epoch as the simulator sees them."""
        return time.time() + self.offset_s

    def now_ms(self) -> int:
        return int(self.now() * 1000)

    def advance(self, seconds: float) -> None:
        self.offset_s += seconds

    def set_ms(self, epoch_ms: int) -> None:
        self.offset_s = epoch_ms / 1000 - time.time()

    def reset(self) -> None:
        self.offset_s = 0.0

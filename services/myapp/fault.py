"""Which requests a configured fault fails: exactly ``percent`` of every 100 consecutive ones, spread evenly.

A counter, not a random draw: a rehearsal at 30% fails 30 of each 100 requests a process serves, so a test can
assert the canary's measured error rate without a tolerance band, and two runs fail the same requests.
"""

from __future__ import annotations

import threading


class FaultSchedule:
    """Request ``n`` (1-based) fails when ``floor(n * p / 100)`` steps up: Bresenham's spacing of p in 100."""

    def __init__(self, percent: int) -> None:
        if not 0 <= percent <= 100:
            raise ValueError(f"FAULT_PERCENT: must be between 0 and 100, got {percent}")
        self.percent = percent
        self._served = 0
        self._lock = threading.Lock()  # uvicorn runs one event loop, but the TestClient and sync callers may not

    def next_fails(self) -> bool:
        """Count one request and say whether it is one of the failed ones."""
        with self._lock:
            self._served += 1
            n = self._served
        return (n * self.percent) // 100 > ((n - 1) * self.percent) // 100

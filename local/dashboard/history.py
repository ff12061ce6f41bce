"""The last minutes of the twin's counters, kept by the page's sampler: increments per tick and durations per run.

Envoy's and the engines' counters are cumulative since their process started. The page wants rates (the chart) and
shares over a recent window (a canary's observed split after a weight change), so `CounterHistory` keeps the
increment between two samples. A counter that goes down was reset (Envoy restarted, a cluster re-created, the twin
restarted a component): the new value is the increment, never a negative rate.

Lambda's own per-invocation duration is the `REPORT ... Duration: N ms` line each run logs (CloudWatch's Duration
metric and Logs Insights' `pct(@duration, 99)` read the same line); `ReportTail` follows the twin's log for them.
"""

from __future__ import annotations

import math
import re
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

KEEP_SECONDS = 300.0
"""How far back the chart and the windows reach."""


class CounterHistory:
    """Cumulative counters sampled over time -> increments per sample, robust to resets."""

    def __init__(self, keep_seconds: float = KEEP_SECONDS) -> None:
        self.keep_seconds = keep_seconds
        self._last: dict[str, float] = {}
        self._steps: deque[tuple[float, float, dict[str, float]]] = deque()
        """(time, seconds since the previous sample, increment per key)."""
        self._last_at: float | None = None

    def add(self, at: float, values: Mapping[str, float]) -> None:
        """One sample of every counter; the first one is the baseline (no increment)."""
        if self._last_at is not None:
            increments = {}
            for key, value in values.items():
                before = self._last.get(key)
                # A key seen for the first time started at 0 (a new subset); a drop is a reset.
                increments[key] = value if before is None or value < before else value - before
            self._steps.append((at, max(at - self._last_at, 1e-6), increments))
        self._last = dict(values)
        self._last_at = at
        while self._steps and self._steps[0][0] < at - self.keep_seconds:
            self._steps.popleft()

    def window(self, seconds: float, now: float) -> dict[str, float]:
        """Sum of each counter's increments over the last `seconds`."""
        out: dict[str, float] = {}
        for at, _, increments in self._steps:
            if at > now - seconds:
                for key, value in increments.items():
                    out[key] = out.get(key, 0.0) + value
        return out

    def rates(self, keys: Sequence[str]) -> dict[str, Any]:
        """Per-second rate of each key at every sample: `{"t": [epoch s...], "series": {key: [rate...]}}`."""
        return {"t": [round(at, 3) for at, _, _ in self._steps],
                "series": {key: [round(inc.get(key, 0.0) / dt, 3) for _, dt, inc in self._steps] for key in keys}}


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (`q` in 0..100), None when there is no value."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


#: `[<component>] REPORT RequestId: <id>\tDuration: <ms> ms...` as `local.worker` prints it and the twin's log
#: sink prefixes it.
REPORT_LINE = re.compile(r"^\[(?P<component>[^\]]+)\] REPORT RequestId: \S+\s+Duration: (?P<ms>[0-9.]+) ms")


class ReportTail:
    """Follows the twin's log file from where it was when made; keeps each component's recent run durations."""

    def __init__(self, path: Path, keep_seconds: float = KEEP_SECONDS, clock: Any = time.time) -> None:
        self.path = path
        self.keep_seconds = keep_seconds
        self.clock = clock
        # The log is appended to by every run on this state folder: only this run's lines count.
        self._offset = path.stat().st_size if path.exists() else 0
        self._partial = b""
        self._durations: dict[str, deque[tuple[float, float]]] = {}

    def read(self) -> None:
        """Take the lines written since the last read (a truncated or replaced file is read from its start)."""
        if not self.path.exists():
            return
        size = self.path.stat().st_size
        if size < self._offset:
            self._offset, self._partial = 0, b""
        with open(self.path, "rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read(size - self._offset)
        self._offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()  # an unfinished last line waits for the next read
        now = self.clock()
        for raw in lines:
            match = REPORT_LINE.match(raw.decode("utf-8", "replace"))
            if match:
                self._durations.setdefault(match["component"], deque()).append((now, float(match["ms"])))
        for runs in self._durations.values():
            while runs and runs[0][0] < now - self.keep_seconds:
                runs.popleft()

    def quantiles(self, component: str) -> dict[str, float | None]:
        """p50 and p99 of the component's runs in the window (None when it ran none)."""
        values = [ms for _, ms in self._durations.get(component, ())]
        return {"p50Ms": percentile(values, 50), "p99Ms": percentile(values, 99), "runs": len(values)}

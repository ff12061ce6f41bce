"""Stage throttling as API Gateway applies it: a token bucket per method, from the stage's MethodSettings.

The bucket holds up to `burst` tokens and refills at `rate` per second; each request takes one, and a request that
finds the bucket empty is answered 429 `Too Many Requests` (the THROTTLED gateway response) before the authorizer or
the integration run. `*/*` settings cover every method (one bucket shared by all of them, as the stage-wide
default); a `<resource path>/<METHOD>` entry overrides it for that method with a bucket of its own. Without
settings the account's limits apply (10000 per second, burst 5000).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sim.capture import Graph, Resource

METHOD_SETTINGS = "aws:apigateway/methodSettings:MethodSettings"
#: API Gateway's account-level throttle per Region (requests per second, burst).
ACCOUNT_RATE, ACCOUNT_BURST = 10000.0, 5000


@dataclass
class TokenBucket:
    rate: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    tokens: float = field(init=False)
    updated: float = field(init=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)
        self.updated = self.clock()

    def take(self) -> bool:
        """One token if there is one (True), else False; refills for the time since the last call first."""
        with self._lock:
            now = self.clock()
            self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return True
            return False


def limits(settings: Mapping[str, Any]) -> tuple[float, int]:
    rate, burst = settings.get("throttlingRateLimit"), settings.get("throttlingBurstLimit")
    # -1 (or unset) leaves the account's limit in force.
    rate = ACCOUNT_RATE if rate is None or float(rate) < 0 else float(rate)
    burst = ACCOUNT_BURST if burst is None or int(burst) < 0 else int(burst)
    return rate, burst


class StageThrottle:
    """The buckets of one stage: `admit(template, method)` is False when API Gateway would answer 429."""

    def __init__(self, by_path: Mapping[str, tuple[float, int]], *, clock: Callable[[], float] = time.monotonic):
        self.limits = dict(by_path)
        self.clock = clock
        default = self.limits.get("*/*", (ACCOUNT_RATE, ACCOUNT_BURST))
        self._default = TokenBucket(*default, clock=clock)
        self._buckets = {path: TokenBucket(*pair, clock=clock) for path, pair in self.limits.items()
                         if path != "*/*"}
        self.throttled = 0

    @classmethod
    def from_graph(cls, graph: Graph, api: Resource, stage: Resource, *,
                   clock: Callable[[], float] = time.monotonic) -> StageThrottle:
        by_path: dict[str, tuple[float, int]] = {}
        for res in graph.of_type(METHOD_SETTINGS):
            i = res.inputs
            if i.get("restApi") == api.id and i.get("stageName") == stage.inputs.get("stageName"):
                by_path[str(i.get("methodPath"))] = limits(i.get("settings") or {})
        return cls(by_path, clock=clock)

    def admit(self, template: str, method: str) -> bool:
        bucket = self._buckets.get(f"{template.lstrip('/')}/{method}", self._default)
        if bucket.take():
            return True
        self.throttled += 1
        return False

    def describe(self) -> dict[str, Any]:
        return {path: {"rateLimit": rate, "burstLimit": burst} for path, (rate, burst) in self.limits.items()}

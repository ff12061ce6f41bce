"""Policies shared by the canary and the shop: HTTP retries and namespace-wide strict mTLS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mesh.common import SECURITY_API, Manifest, check_duration, manifest


@dataclass(frozen=True, kw_only=True)
class RetrySettings:
    """Istio ``HTTPRetry``: bounded retries, each attempt with its own timeout."""

    attempts: int = 2
    per_try_timeout: str = "2s"
    retry_on: str = "gateway-error,connect-failure,refused-stream"
    """Not ``5xx``: retrying a canary's own errors would hide them from the people watching the rollout."""

    def validate(self, prefix: str = "retries") -> None:
        if self.attempts < 0:
            raise ValueError(f"{prefix}.attempts: must be >= 0, got {self.attempts}")
        check_duration(self.per_try_timeout, f"{prefix}.perTryTimeout")
        validate_retry_on(self.retry_on, f"{prefix}.retryOn")

    def spec(self) -> dict[str, Any]:
        if self.attempts == 0:
            return {"attempts": 0}  # Istio reads attempts 0 as "retries off"
        return {"attempts": self.attempts, "perTryTimeout": self.per_try_timeout, "retryOn": self.retry_on}


#: The conditions Istio passes through to Envoy's ``x-envoy-retry-on`` / ``x-envoy-retry-grpc-on``.
RETRY_ON_VALUES = frozenset(
    {
        "5xx",
        "gateway-error",
        "reset",
        "connect-failure",
        "envoy-ratelimited",
        "retriable-4xx",
        "refused-stream",
        "retriable-status-codes",
        "retriable-headers",
        "http3-post-connect-failure",
        "cancelled",
        "deadline-exceeded",
        "internal",
        "resource-exhausted",
        "unavailable",
    }
)


def validate_retry_on(value: str, key: str) -> str:
    """Every comma-separated item is a known Envoy condition or an HTTP status code (Istio accepts both)."""
    items = [item.strip() for item in value.split(",")]
    for item in items:
        if item in RETRY_ON_VALUES:
            continue
        if item.isdigit() and 100 <= int(item) <= 599:
            continue
        raise ValueError(f"{key}: unknown retry condition {item!r}")
    return value


def peer_authentication(namespace: str) -> Manifest:
    """Namespace-wide STRICT mTLS: plaintext from outside the mesh is refused."""
    spec = {"mtls": {"mode": "STRICT"}}
    return manifest(SECURITY_API, "PeerAuthentication", "default", namespace, spec)

"""The shop's mesh: ingress routes to inventory/product/notification, circuit breaker, who may call whom.

Retries are split by method because Istio's ``HTTPRetry`` cannot be scoped to methods itself: reads
(GET/HEAD) retry on ``5xx``, ``reset`` and connect failures; writes retry only when the request never
reached the app (``connect-failure``, ``refused-stream``), so a reservation is never sent twice by the
mesh. The order Lambda adds its own bounded, idempotency-keyed retries on top.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mesh.common import (
    NETWORKING_API,
    SECURITY_API,
    Manifest,
    app_selector,
    check_duration,
    manifest,
    service_fqdn,
    spiffe_principal,
    workload_labels,
)
from mesh.gateway import IngressSettings, gateway
from mesh.policies import RetrySettings, peer_authentication

READ_METHODS = "GET|HEAD"
SHOP_VERSION = "v1"


@dataclass(frozen=True, kw_only=True)
class CircuitBreakerSettings:
    """The seed's circuit breaker with today's field names (``consecutive5xxErrors``, not ``consecutiveErrors``)."""

    max_connections: int = 100
    http1_max_pending_requests: int = 50
    max_requests_per_connection: int = 2
    consecutive_5xx_errors: int = 5
    interval: str = "30s"
    base_ejection_time: str = "30s"
    max_ejection_percent: int = 50

    def __post_init__(self) -> None:
        for key, value in (
            ("circuitBreaker.maxConnections", self.max_connections),
            ("circuitBreaker.http1MaxPendingRequests", self.http1_max_pending_requests),
            ("circuitBreaker.maxRequestsPerConnection", self.max_requests_per_connection),
            ("circuitBreaker.consecutive5xxErrors", self.consecutive_5xx_errors),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key}: must be a positive integer, got {value!r}")
        if not 0 <= self.max_ejection_percent <= 100:
            raise ValueError(f"circuitBreaker.maxEjectionPercent: must be 0..100, got {self.max_ejection_percent}")
        check_duration(self.interval, "circuitBreaker.interval")
        check_duration(self.base_ejection_time, "circuitBreaker.baseEjectionTime")

    def traffic_policy(self) -> dict[str, Any]:
        """``connectionPool`` and ``outlierDetection`` of a DestinationRule's ``trafficPolicy``."""
        return {
            "connectionPool": {
                "tcp": {"maxConnections": self.max_connections},
                "http": {
                    "http1MaxPendingRequests": self.http1_max_pending_requests,
                    "maxRequestsPerConnection": self.max_requests_per_connection,
                },
            },
            "outlierDetection": {
                "consecutive5xxErrors": self.consecutive_5xx_errors,
                "interval": self.interval,
                "baseEjectionTime": self.base_ejection_time,
                "maxEjectionPercent": self.max_ejection_percent,
            },
        }


@dataclass(frozen=True, kw_only=True)
class ShopService:
    """One service behind the ingress: the path prefix it owns and who besides the gateway may call it."""

    name: str
    prefix: str
    port: int = 80
    target_port: int = 8080
    timeout: str = "5s"
    circuit_breaker: CircuitBreakerSettings | None = None
    callers: tuple[str, ...] = ()
    """Service accounts (in the shop namespace) of in-mesh workloads allowed to call this service."""
    public_reads: bool = False
    """GET/HEAD under the prefix are open to anyone at the ingress (`mesh.service_auth`); otherwise service-only."""
    writes: tuple[str, ...] = ()
    """Paths under the prefix (``""`` for the prefix itself) the stack's service token may POST at the ingress."""

    def __post_init__(self) -> None:
        if not self.prefix.startswith("/") or self.prefix.endswith("/"):
            raise ValueError(f"{self.name}.prefix: must start with '/' and not end with it, got {self.prefix!r}")
        check_duration(self.timeout, f"{self.name}.timeout")
        for suffix in self.writes:
            if suffix and (not suffix.startswith("/") or "*" in suffix):
                raise ValueError(f"{self.name}.writes: {suffix!r} must be '' or an exact '/path'")

    @property
    def labels(self) -> dict[str, str]:
        """Pod labels of the service's Deployment (same ``app``/``version`` contract as the canary)."""
        return workload_labels(self.name, SHOP_VERSION)

    @property
    def selector(self) -> dict[str, str]:
        return app_selector(self.name)

    @property
    def service_account(self) -> str:
        """Each Deployment runs as its own service account so AuthorizationPolicies can tell callers apart."""
        return self.name


def default_services() -> tuple[ShopService, ...]:
    return (
        # Stock and the catalogue are what the shop shows anyone; changing stock and writing (or reading) a user's
        # notifications is for the stack's own order function only.
        ShopService(name="inventory", prefix="/api/inventory", circuit_breaker=CircuitBreakerSettings(),
                    public_reads=True, writes=("/reserve", "/release")),
        ShopService(name="product", prefix="/api/products", public_reads=True),
        ShopService(name="notification", prefix="/api/notifications", writes=("",)),
    )


@dataclass(frozen=True, kw_only=True)
class ShopSettings:
    namespace: str = "shop"
    ingress: IngressSettings = field(default_factory=IngressSettings)
    services: tuple[ShopService, ...] = field(default_factory=default_services)
    read_retries: RetrySettings = field(
        default_factory=lambda: RetrySettings(attempts=3, per_try_timeout="2s", retry_on="5xx,connect-failure,reset")
    )
    write_retries: RetrySettings = field(
        default_factory=lambda: RetrySettings(
            attempts=2, per_try_timeout="2s", retry_on="connect-failure,refused-stream"
        )
    )

    def __post_init__(self) -> None:
        self.read_retries.validate("readRetries")
        self.write_retries.validate("writeRetries")
        names = [svc.name for svc in self.services]
        if len(set(names)) != len(names):
            raise ValueError(f"services: duplicate service names in {names}")
        for svc in self.services:
            unknown = set(svc.callers) - set(names)
            if unknown:
                raise ValueError(f"{svc.name}.callers: unknown services {sorted(unknown)}")

    def host(self, service: ShopService) -> str:
        return service_fqdn(service.name, self.namespace)

    def service(self, name: str) -> ShopService:
        for svc in self.services:
            if svc.name == name:
                return svc
        raise KeyError(name)


def _uri_matches(prefix: str) -> list[dict[str, Any]]:
    # exact + "prefix/" so "/api/inventory" never captures "/api/inventoryfoo"
    return [{"uri": {"exact": prefix}}, {"uri": {"prefix": prefix + "/"}}]


def virtual_service(settings: ShopSettings) -> Manifest:
    """Ingress routes: per service a read route (GET/HEAD, broad retries) then a write route (narrow retries)."""
    http: list[dict[str, Any]] = []
    for svc in settings.services:
        destination = {"destination": {"host": settings.host(svc), "port": {"number": svc.port}}}
        reads = [{**m, "method": {"regex": READ_METHODS}} for m in _uri_matches(svc.prefix)]
        http.append(
            {
                "name": f"{svc.name}-read",
                "match": reads,
                "route": [destination],
                "timeout": svc.timeout,
                "retries": settings.read_retries.spec(),
            }
        )
        http.append(
            {
                "name": f"{svc.name}-write",
                "match": _uri_matches(svc.prefix),
                "route": [destination],
                "timeout": svc.timeout,
                "retries": settings.write_retries.spec(),
            }
        )
    spec = {"hosts": list(settings.ingress.hosts), "gateways": [settings.ingress.ref], "http": http}
    return manifest(NETWORKING_API, "VirtualService", "shop-vs", settings.namespace, spec)


def destination_rule(settings: ShopSettings, service: ShopService) -> Manifest:
    """mTLS to the service, plus its circuit breaker when it has one (inventory, from the seed)."""
    policy: dict[str, Any] = {"tls": {"mode": "ISTIO_MUTUAL"}}
    if service.circuit_breaker is not None:
        policy.update(service.circuit_breaker.traffic_policy())
    spec = {"host": settings.host(service), "trafficPolicy": policy}
    return manifest(NETWORKING_API, "DestinationRule", f"{service.name}-dr", settings.namespace, spec)


def deny_all_policy(namespace: str) -> Manifest:
    """An empty ALLOW policy matches nothing: every workload in the namespace is closed unless allowed below."""
    return manifest(SECURITY_API, "AuthorizationPolicy", "deny-all", namespace, {})


def authorization_policy(settings: ShopSettings, service: ShopService) -> Manifest:
    """Only the ingress gateway and the service's declared in-mesh callers may reach it (by mTLS identity)."""
    principals = [settings.ingress.principal]
    principals += [
        spiffe_principal(settings.namespace, settings.service(c).service_account, settings.ingress.trust_domain)
        for c in service.callers
    ]
    spec = {
        "selector": {"matchLabels": service.selector},
        "action": "ALLOW",
        "rules": [{"from": [{"source": {"principals": principals}}]}],
    }
    return manifest(SECURITY_API, "AuthorizationPolicy", f"{service.name}-allow", settings.namespace, spec)


def shop_manifests(settings: ShopSettings, *, include_gateway: bool = True) -> list[Manifest]:
    """Every Istio resource of the shop, in apply order (the Gateway lives in the ingress namespace)."""
    out: list[Manifest] = [gateway(settings.ingress)] if include_gateway else []
    out.append(peer_authentication(settings.namespace))
    out.append(deny_all_policy(settings.namespace))
    out.extend(authorization_policy(settings, svc) for svc in settings.services)
    out.extend(destination_rule(settings, svc) for svc in settings.services)
    out.append(virtual_service(settings))
    return out

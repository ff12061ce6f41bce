"""The ingress Gateway both the canary app and the shop are exposed through."""

from __future__ import annotations

from dataclasses import dataclass, field

from mesh.common import NETWORKING_API, Manifest, manifest, spiffe_principal


@dataclass(frozen=True, kw_only=True)
class IngressSettings:
    """Where the Istio ingress gateway runs (the Helm ``gateway`` release) and which hosts it accepts."""

    name: str = "ingress"
    """Name of the Gateway resource."""
    namespace: str = "istio-ingress"
    """Namespace of the Gateway resource and of the gateway workload (the Helm release's namespace)."""
    selector: dict[str, str] = field(default_factory=lambda: {"istio": "ingressgateway"})
    """Pod labels of the gateway workload; the Helm chart derives ``istio: ingressgateway`` from the release."""
    service_account: str = "istio-ingressgateway"
    """The gateway pods' service account (the Helm release name); AuthorizationPolicies trust it."""
    hosts: tuple[str, ...] = ("*",)
    """Host headers accepted; ``*`` because the internal NLB hostname is only known after deploy."""
    port: int = 80
    trust_domain: str = "cluster.local"

    @property
    def ref(self) -> str:
        """``<namespace>/<name>``: how a VirtualService in another namespace names this Gateway."""
        return f"{self.namespace}/{self.name}"

    @property
    def principal(self) -> str:
        """The gateway's mTLS identity, as AuthorizationPolicies match it."""
        return spiffe_principal(self.namespace, self.service_account, self.trust_domain)


def gateway(settings: IngressSettings) -> Manifest:
    """A plain-HTTP server on the ingress gateway (TLS ends at the load balancer in front of it)."""
    if not settings.hosts:
        raise ValueError("ingress hosts: at least one host (or '*') is required")
    spec = {
        "selector": dict(settings.selector),
        "servers": [
            {
                "port": {"number": settings.port, "name": "http", "protocol": "HTTP"},
                "hosts": list(settings.hosts),
            }
        ],
    }
    return manifest(NETWORKING_API, "Gateway", settings.name, settings.namespace, spec)

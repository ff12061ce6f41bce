"""Who may change stock: service credentials verified at the ingress gateway.

Every caller reaches the shop through the ingress gateway, so the services' own AuthorizationPolicies (which trust
the gateway's mTLS identity) cannot tell the order function from any other client of the internal load balancer.
The gateway itself therefore checks an end-user credential: a short-lived JWT the order function mints for the
mesh, with its own issuer and audience (never a user's access token), signed by a key the stack keeps in Secrets
Manager.

* `request_authentication`: the gateway verifies that JWT (ES256; the public half inlined as a JWKS). A token that
  is present but invalid (bad signature, expired, wrong audience, another issuer such as a user's token) is refused
  with 401; a request without one passes on, unauthenticated, to the policy.
* `ingress_authorization_policy`: one ALLOW policy on the gateway workload, so anything it does not list is refused
  with 403. Its rules are deliberate: the public reads (products and stock: GET/HEAD on the services marked
  `public_reads`), the hosts of the other apps served by the same gateway (the canary), and for the service
  principal only (issuer/subject and audience) each service's write paths and its non-public reads.

Why ES256 and not the HS256 of user tokens: Istio passes `jwks` to Envoy as-is, and Envoy's verifier accepts
symmetric (`oct`) keys, but the RequestAuthentication object, istiod's xDS and every gateway's config dump would
then carry the signing secret itself (istio/istio#24421, #50196: JWKS is treated as public material). With an
asymmetric key only the public half leaves Secrets Manager.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mesh.common import SECURITY_API, Manifest, manifest
from mesh.gateway import IngressSettings
from mesh.shop import READ_METHODS, ShopSettings

ALGORITHM = "ES256"
#: DER prefix of a P-256 SubjectPublicKeyInfo (id-ecPublicKey, prime256v1, then the BIT STRING header); the rest
#: is the uncompressed point 0x04 || X || Y.
_P256_SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200")
_P256_COORDINATE = 32
_PEM = re.compile(r"-----BEGIN PUBLIC KEY-----(?P<body>[A-Za-z0-9+/=\s]+)-----END PUBLIC KEY-----")
WRITE_METHOD = "POST"


@dataclass(frozen=True, kw_only=True)
class ServiceIdentity:
    """The claims of the service token: distinct from user tokens in issuer, subject and audience."""

    issuer: str = "serverless-mesh-orders"
    subject: str = "orders"
    audience: str = "shop-mesh"
    key_id: str = "orders-1"

    def __post_init__(self) -> None:
        for key, value in (("serviceTokenIssuer", self.issuer), ("serviceTokenAudience", self.audience),
                           ("subject", self.subject), ("keyId", self.key_id)):
            if not value or value != value.strip() or "*" in value:
                raise ValueError(f"{key}: must be a non-empty string without spaces at its ends or '*', got "
                                 f"{value!r}")

    @property
    def principal(self) -> str:
        """Istio's `request.auth.principal` of a verified token: `<iss>/<sub>`."""
        return f"{self.issuer}/{self.subject}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def p256_jwk(public_key_pem: str, key_id: str) -> dict[str, str]:
    """The JWK of a P-256 public key in PEM (what `tls.PrivateKey` outputs as `public_key_pem`), stdlib only."""
    found = _PEM.search(public_key_pem)
    if found is None:
        raise ValueError("public key: not a PEM 'PUBLIC KEY' block")
    der = base64.b64decode("".join(found["body"].split()))
    point = der[len(_P256_SPKI_PREFIX):]
    if not der.startswith(_P256_SPKI_PREFIX) or len(point) != 1 + 2 * _P256_COORDINATE or point[0] != 4:
        raise ValueError("public key: not an uncompressed P-256 (ECDSA) key")
    x, y = point[1:1 + _P256_COORDINATE], point[1 + _P256_COORDINATE:]
    return {"kty": "EC", "crv": "P-256", "x": _b64url(x), "y": _b64url(y), "alg": ALGORITHM, "use": "sig",
            "kid": key_id}


def jwks(public_key_pem: str, key_id: str) -> str:
    """The `jwks` string of a RequestAuthentication rule: one signing key."""
    return json.dumps({"keys": [p256_jwk(public_key_pem, key_id)]}, sort_keys=True)


def request_authentication(ingress: IngressSettings, identity: ServiceIdentity, jwks_json: str) -> Manifest:
    """The gateway verifies service tokens; the token is not forwarded (the services never need it)."""
    spec = {
        "selector": {"matchLabels": dict(ingress.selector)},
        "jwtRules": [{"issuer": identity.issuer, "audiences": [identity.audience], "jwks": jwks_json,
                      "forwardOriginalToken": False}],
    }
    return manifest(SECURITY_API, "RequestAuthentication", "shop-service-token", ingress.namespace, spec)


def _paths(prefix: str, suffixes: Sequence[str]) -> list[str]:
    return [prefix + suffix for suffix in suffixes]


def _reads(prefix: str) -> dict[str, Any]:
    return {"operation": {"methods": READ_METHODS.split("|"), "paths": [prefix, prefix + "/*"]}}


def ingress_authorization_policy(settings: ShopSettings, identity: ServiceIdentity,
                                 other_hosts: Sequence[str] = ()) -> Manifest:
    """ALLOW on the gateway: public reads, the other apps' hosts, and the service principal's writes.

    `other_hosts` are the hosts of the other VirtualServices bound to this gateway (the canary app): an ALLOW
    policy closes the whole gateway workload, so they are allowed by name (and with any port), deliberately.
    """
    public = [_reads(svc.prefix) for svc in settings.services if svc.public_reads]
    service_ops: list[dict[str, Any]] = []
    for svc in settings.services:
        if svc.writes:
            service_ops.append({"operation": {"methods": [WRITE_METHOD], "paths": _paths(svc.prefix, svc.writes)}})
        if not svc.public_reads:
            service_ops.append(_reads(svc.prefix))
    rules: list[dict[str, Any]] = []
    if public:
        rules.append({"to": public})
    if other_hosts:
        hosts = sorted({h for host in other_hosts for h in (host, f"{host}:*")})
        rules.append({"to": [{"operation": {"hosts": hosts}}]})
    rules.append({
        "from": [{"source": {"requestPrincipals": [identity.principal]}}],
        "to": service_ops,
        "when": [{"key": "request.auth.audiences", "values": [identity.audience]}],
    })
    spec = {"selector": {"matchLabels": dict(settings.ingress.selector)}, "action": "ALLOW", "rules": rules}
    return manifest(SECURITY_API, "AuthorizationPolicy", "shop-ingress", settings.ingress.namespace, spec)


def edge_manifests(settings: ShopSettings, identity: ServiceIdentity, jwks_json: str,
                   other_hosts: Sequence[str] = ()) -> list[Manifest]:
    """The gateway's authentication and authorization, in apply order."""
    return [request_authentication(settings.ingress, identity, jwks_json),
            ingress_authorization_policy(settings, identity, other_hosts)]

"""The gateway's RequestAuthentication + AuthorizationPolicy on real Envoy: who gets through, and with what status.

One Envoy whose ingress listener stands for the gateway workload (its namespace and labels), an upstream that
answers every path (myapp: 404 for the shop's paths, so "reached the service" is an answer Envoy stamped with
`x-envoy-upstream-service-time`, with an upstream request counted), and the specs `mesh.service_auth` builds.
Refusals are Envoy's own: 401 from `jwt_authn`, 403 from `rbac` (or `jwt_authn`'s audience check), with no request
reaching the service.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from local.envoy import EnvoyProcess
from mesh import canary, service_auth, shop
from mesh.canary import CanarySettings
from mesh.envoy import ListenerSpec, UnsupportedSpec, cluster_name, translate
from mesh.service_auth import ServiceIdentity
from mesh.shop import ShopSettings
from tests.mesh.conftest import myapps
from tests.support.servers import free_port

SETTINGS = ShopSettings()
IDENTITY = ServiceIdentity()
CANARY = CanarySettings(canary_weight=50)
CANARY_HOST = CANARY.host


@dataclass(frozen=True)
class Edge:
    envoy: EnvoyProcess
    key: ec.EllipticCurvePrivateKey

    @property
    def url(self) -> str:
        return self.envoy.url("ingress")

    def token(self, *, ttl: int = 300, key: ec.EllipticCurvePrivateKey | None = None, **claims: object) -> str:
        now = int(time.time())
        body = {"iss": IDENTITY.issuer, "sub": IDENTITY.subject, "aud": IDENTITY.audience, "iat": now,
                "exp": now + ttl, **claims}
        return jwt.encode(body, key or self.key, algorithm="ES256", headers={"kid": IDENTITY.key_id})

    def upstream_requests(self, service: str) -> int:
        cluster = cluster_name(SETTINGS.host(SETTINGS.service(service)), None, 80)
        return int(self.envoy.cluster_stats(cluster).get("upstream_rq_total", 0))


def _reached(response: httpx.Response) -> bool:
    """The answer came from the upstream service, not from one of Envoy's filters.

    Envoy stamps `x-envoy-upstream-service-time` only when the whole request had arrived before the upstream
    answered; under load myapp's 404 for a shop path can beat the request body, and then the stamp is missing. So
    the upstream's own JSON body counts too: Envoy's local replies (`Jwt is missing`, `RBAC: access denied`) are
    plain text.
    """
    if response.headers.get("x-envoy-upstream-service-time") is not None:
        return True
    return response.headers.get("content-type", "").startswith("application/json") and bool(response.content)


def _public_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _listener(port: int = 1) -> ListenerSpec:
    return ListenerSpec(name="ingress", port=port, gateway=SETTINGS.ingress.ref,
                        workload_namespace=SETTINGS.ingress.namespace,
                        workload_labels=tuple(SETTINGS.ingress.selector.items()))


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    root = tmp_path_factory.mktemp("edge")
    key = ec.generate_private_key(ec.SECP256R1())
    ra, ap = service_auth.edge_manifests(SETTINGS, IDENTITY, service_auth.jwks(_public_pem(key), IDENTITY.key_id),
                                         other_hosts=(CANARY_HOST,))
    with ExitStack() as stack:
        apps = stack.enter_context(myapps(root, {"upstream": {}}))
        envoy = stack.enter_context(EnvoyProcess(root / "envoy", [_listener(free_port())]))
        endpoints = {(SETTINGS.host(svc), None): [apps["upstream"]] for svc in SETTINGS.services}
        endpoints.update({(CANARY_HOST, v): [apps["upstream"]] for v in ("v1", "v2")})
        envoy.apply([shop.virtual_service(SETTINGS), canary.virtual_service(CANARY)],
                    [*(shop.destination_rule(SETTINGS, s) for s in SETTINGS.services), canary.destination_rule(CANARY)],
                    endpoints, request_authentications=[ra], authorization_policies=[ap])
        yield Edge(envoy=envoy, key=key)


def _post(edge: Edge, path: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(edge.url + path, json={"orderId": "o-1", "productId": "p-1", "quantity": 1},
                      headers=headers, timeout=10)


def test_a_valid_service_token_reaches_inventory_and_is_not_forwarded(edge: Edge) -> None:
    before = edge.upstream_requests("inventory")
    response = _post(edge, "/api/inventory/reserve", edge.token())
    assert response.status_code == 404 and _reached(response)  # myapp answered
    assert edge.upstream_requests("inventory") == before + 1


def _forged(edge: Edge) -> str:
    return edge.token(key=ec.generate_private_key(ec.SECP256R1()))


def _user_token(edge: Edge) -> str:
    now = int(time.time())
    return jwt.encode({"sub": "alice", "iat": now, "exp": now + 300}, "a-user-signing-key-of-32-bytes!!",
                      algorithm="HS256")


@pytest.mark.parametrize(("case", "make", "status"), [
    ("no credential", lambda e: None, 403),
    ("forged signature", _forged, 401),
    # jwt_authn answers a verified token for another audience with 403 ("Audiences in Jwt are not allowed").
    ("wrong audience", lambda e: e.token(aud="someone-else"), 403),
    ("expired", lambda e: e.token(ttl=-120), 401),
    ("a user's token", _user_token, 401),
    ("another subject of the issuer", lambda e: e.token(sub="intruder"), 403),
    ("not a JWT", lambda e: "garbage", 401),
])
def test_writes_without_the_service_principal_never_reach_a_service(edge: Edge, case: str, make, status: int) -> None:
    token = make(edge)
    for path, service in (("/api/inventory/reserve", "inventory"), ("/api/inventory/release", "inventory"),
                          ("/api/notifications", "notification")):
        before = edge.upstream_requests(service)
        response = _post(edge, path, token)
        assert response.status_code == status, (case, path, response.text)
        assert edge.upstream_requests(service) == before, (case, path)


def test_stock_and_catalogue_reads_are_public_and_notifications_are_not(edge: Edge) -> None:
    assert _reached(httpx.get(edge.url + "/api/inventory/p-1", timeout=10))
    assert _reached(httpx.head(edge.url + "/api/products", timeout=10))
    assert httpx.get(edge.url + "/api/notifications", params={"userId": "u"}, timeout=10).status_code == 403
    served = httpx.get(edge.url + "/api/notifications", params={"userId": "u"}, timeout=10,
                       headers={"Authorization": f"Bearer {edge.token()}"})
    assert _reached(served)


def test_the_service_token_allows_only_the_listed_writes(edge: Edge) -> None:
    token = edge.token()
    for method, path in (("POST", "/api/products"), ("DELETE", "/api/inventory/p-1"), ("POST", "/api/inventory/p-1"),
                         ("PUT", "/api/inventory/reserve")):
        response = httpx.request(method, edge.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert response.status_code == 403, (method, path)


def test_the_canary_host_is_allowed_and_cannot_be_used_to_reach_the_shop(edge: Edge) -> None:
    # The host rule is safe because the canary's VirtualService owns that host: the more specific domain wins over
    # the shop's `*`, so a forged Host header reaches the canary app, never inventory.
    before = edge.upstream_requests("inventory")
    version = httpx.get(edge.url + "/version", headers={"Host": CANARY_HOST}, timeout=10)
    assert version.status_code == 200, version.text
    smuggled = httpx.post(edge.url + "/api/inventory/reserve", headers={"Host": CANARY_HOST}, timeout=10)
    assert _reached(smuggled)
    assert edge.upstream_requests("inventory") == before


def test_a_policy_for_another_workload_adds_no_filter() -> None:
    ap = shop.authorization_policy(SETTINGS, SETTINGS.service("inventory"))  # the inventory sidecar's
    resources = translate([shop.virtual_service(SETTINGS)], [], {}, [_listener()], authorization_policies=[ap])
    filters = resources.listeners[0]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
    assert [f["name"] for f in filters] == ["envoy.filters.http.router"]


def test_a_jwks_uri_is_refused_rather_than_ignored() -> None:
    ra = service_auth.request_authentication(SETTINGS.ingress, IDENTITY, "{}")
    del ra["spec"]["jwtRules"][0]["jwks"]
    ra["spec"]["jwtRules"][0]["jwksUri"] = "https://issuer.example/jwks.json"
    with pytest.raises(UnsupportedSpec, match="jwksUri"):
        translate([shop.virtual_service(SETTINGS)], [], {}, [_listener()], request_authentications=[ra])

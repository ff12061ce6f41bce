"""The gateway's service-token authentication and authorization: builders, CRD schemas, the JWKS conversion."""

from __future__ import annotations

import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mesh.service_auth import (
    ServiceIdentity,
    edge_manifests,
    ingress_authorization_policy,
    jwks,
    p256_jwk,
    request_authentication,
)
from mesh.shop import ShopService, ShopSettings
from sim.rules import CloudRejection, check

IDENTITY = ServiceIdentity()


def _public_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _istio_check(manifest: dict) -> None:
    check(f"kubernetes:{manifest['apiVersion']}:{manifest['kind']}", manifest["metadata"]["name"],
          {"apiVersion": manifest["apiVersion"], "kind": manifest["kind"], "metadata": manifest["metadata"],
           "spec": manifest["spec"]})


def test_the_jwk_of_a_p256_pem_verifies_what_the_private_key_signs() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode({"sub": "orders"}, key, algorithm="ES256")
    jwk = p256_jwk(_public_pem(key), "k1")
    assert jwk["kty"] == "EC" and jwk["crv"] == "P-256" and jwk["kid"] == "k1"
    verifier = jwt.PyJWK(jwk).key
    assert jwt.decode(token, verifier, algorithms=["ES256"]) == {"sub": "orders"}
    assert json.loads(jwks(_public_pem(key), "k1")) == {"keys": [jwk]}


@pytest.mark.parametrize("pem", [
    "not a key",
    _public_pem(ec.generate_private_key(ec.SECP384R1())),
    _public_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
])
def test_anything_but_a_p256_public_key_is_refused(pem: str) -> None:
    with pytest.raises(ValueError, match="public key"):
        p256_jwk(pem, "k1")


def test_the_edge_objects_pass_the_istio_crd_schemas() -> None:
    pem = _public_pem(ec.generate_private_key(ec.SECP256R1()))
    manifests = edge_manifests(ShopSettings(), IDENTITY, jwks(pem, "k1"), other_hosts=("myapp.x.svc.cluster.local",))
    assert [m["kind"] for m in manifests] == ["RequestAuthentication", "AuthorizationPolicy"]
    for manifest in manifests:
        _istio_check(manifest)


def test_a_misspelt_jwt_rule_field_is_rejected_by_the_schema() -> None:
    manifest = request_authentication(ShopSettings().ingress, IDENTITY, "{}")
    manifest["spec"]["jwtRules"][0]["audience"] = ["shop-mesh"]
    with pytest.raises(CloudRejection, match="audience"):
        _istio_check(manifest)


def test_the_token_is_verified_on_the_gateway_workload_and_not_forwarded() -> None:
    settings = ShopSettings()
    ra = request_authentication(settings.ingress, IDENTITY, "{}")
    assert ra["metadata"]["namespace"] == settings.ingress.namespace
    assert ra["spec"]["selector"] == {"matchLabels": settings.ingress.selector}
    assert ra["spec"]["jwtRules"] == [{"issuer": IDENTITY.issuer, "audiences": [IDENTITY.audience], "jwks": "{}",
                                       "forwardOriginalToken": False}]


def test_writes_need_the_service_principal_and_audience_and_reads_of_stock_and_products_are_public() -> None:
    spec = ingress_authorization_policy(ShopSettings(), IDENTITY)["spec"]
    assert spec["action"] == "ALLOW"
    public, service = spec["rules"]
    assert "from" not in public and "when" not in public
    assert [op["operation"]["paths"] for op in public["to"]] == [
        ["/api/inventory", "/api/inventory/*"], ["/api/products", "/api/products/*"]]
    assert all(op["operation"]["methods"] == ["GET", "HEAD"] for op in public["to"])
    assert service["from"] == [{"source": {"requestPrincipals": ["serverless-mesh-orders/orders"]}}]
    assert service["when"] == [{"key": "request.auth.audiences", "values": ["shop-mesh"]}]
    assert [(op["operation"]["methods"], op["operation"]["paths"]) for op in service["to"]] == [
        (["POST"], ["/api/inventory/reserve", "/api/inventory/release"]),
        (["POST"], ["/api/notifications"]),
        (["GET", "HEAD"], ["/api/notifications", "/api/notifications/*"]),
    ]


def test_other_apps_on_the_gateway_are_allowed_by_host_with_any_port() -> None:
    host = "myapp.canary.svc.cluster.local"
    spec = ingress_authorization_policy(ShopSettings(), IDENTITY, other_hosts=(host,))["spec"]
    hosts = spec["rules"][1]["to"][0]["operation"]["hosts"]
    assert hosts == ["myapp.canary.svc.cluster.local", "myapp.canary.svc.cluster.local:*"]


def test_the_order_functions_paths_are_the_ones_the_policy_allows() -> None:
    from functions.orders.adapters import NOTIFICATIONS_PATH, RELEASE_PATH, RESERVE_PATH

    service = ingress_authorization_policy(ShopSettings(), IDENTITY)["spec"]["rules"][-1]
    allowed = {p for op in service["to"] if op["operation"]["methods"] == ["POST"] for p in op["operation"]["paths"]}
    assert {RESERVE_PATH, RELEASE_PATH, NOTIFICATIONS_PATH} == allowed


@pytest.mark.parametrize("bad", ["", " padded", "any*"])
def test_an_unusable_issuer_is_refused_naming_the_key(bad: str) -> None:
    with pytest.raises(ValueError, match="serviceTokenIssuer"):
        ServiceIdentity(issuer=bad)


def test_a_wildcard_write_path_is_refused() -> None:
    with pytest.raises(ValueError, match=r"inventory\.writes"):
        ShopService(name="inventory", prefix="/api/inventory", writes=("/*",))


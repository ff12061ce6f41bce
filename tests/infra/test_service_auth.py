"""The stack's service credential under mocks: the key, its secret, the order function's access, and the gateway's
RequestAuthentication/AuthorizationPolicy (validated against the vendored Istio CRD schemas by the mock's rules)."""

from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from mesh.service_auth import ServiceIdentity
from sim.capture import Graph
from sim.rules import CloudRejection, check
from tests.infra.test_shop import AUTHORIZATION_POLICY, function, k8s_named, paths_holding, shop_graph

REQUEST_AUTHENTICATION = "kubernetes:security.istio.io/v1:RequestAuthentication"
PRIVATE_KEY = "tls:index/privateKey:PrivateKey"
IDENTITY = ServiceIdentity()


@pytest.fixture(scope="module")
def graph() -> Graph:
    return shop_graph()


def test_the_key_is_ecdsa_p256_and_only_its_secret_version_holds_the_private_half(graph: Graph) -> None:
    key = graph.one(PRIVATE_KEY)
    assert (key.inputs["algorithm"], key.inputs["ecdsaCurve"]) == ("ECDSA", "P256")
    private = key.outputs["privateKeyPemPkcs8"]
    holders = sorted(r.name for r in graph.resources if r.type != PRIVATE_KEY and paths_holding(r.inputs, private))
    assert holders == ["shop-service-auth-key-version"]
    version = graph.one("aws:secretsmanager/secretVersion:SecretVersion", "shop-service-auth-key-version")
    assert "secretString" in version.secret_paths


def test_the_gateway_verifies_with_the_public_half_of_the_stacks_key(graph: Graph) -> None:
    key = graph.one(PRIVATE_KEY).outputs
    ra = k8s_named(graph, REQUEST_AUTHENTICATION, "shop-service-token")
    assert ra.inputs["metadata"]["namespace"] == "istio-ingress"
    (rule,) = ra.inputs["spec"]["jwtRules"]
    assert rule["issuer"] == IDENTITY.issuer and rule["audiences"] == [IDENTITY.audience]
    signer = serialization.load_pem_private_key(key["privateKeyPemPkcs8"].encode(), password=None)
    token = jwt.encode({"sub": "orders", "aud": IDENTITY.audience}, signer, algorithm="ES256")
    verifier = jwt.PyJWKSet.from_json(rule["jwks"]).keys[0].key
    assert jwt.decode(token, verifier, algorithms=["ES256"], audience=IDENTITY.audience)["sub"] == "orders"


def test_the_gateway_policy_allows_the_canary_host_and_the_service_principal(graph: Graph) -> None:
    ap = k8s_named(graph, AUTHORIZATION_POLICY, "shop-ingress")
    spec = ap.inputs["spec"]
    assert ap.inputs["metadata"]["namespace"] == "istio-ingress" and spec["action"] == "ALLOW"
    hosts = [h for rule in spec["rules"] for to in rule.get("to", []) for h in to["operation"].get("hosts", [])]
    assert "myapp-service.canary.svc.cluster.local" in hosts
    assert spec["rules"][-1]["from"] == [{"source": {"requestPrincipals": [IDENTITY.principal]}}]


def test_the_edge_objects_wait_for_istios_crds(graph: Graph) -> None:
    releases = {r.urn for r in graph.of_type("kubernetes:helm.sh/v3:Release")}
    for kind, name in ((REQUEST_AUTHENTICATION, "shop-service-token"), (AUTHORIZATION_POLICY, "shop-ingress")):
        assert releases & set(k8s_named(graph, kind, name).dependencies), name


def test_a_request_authentication_with_two_key_sources_is_rejected_like_the_api_server_would() -> None:
    with pytest.raises(CloudRejection, match="jwksUri"):
        check(REQUEST_AUTHENTICATION, "bad", {"spec": {"jwtRules": [{"issuer": "i", "jwksUri": 7}]}})


def test_only_the_mesh_caller_gets_the_service_token(graph: Graph) -> None:
    env = function(graph, "orders-create").inputs["environment"]["variables"]
    secret = graph.one("aws:secretsmanager/secret:Secret", "shop-service-auth-key-secret").outputs["arn"]
    assert env["SERVICE_TOKEN_SECRET_ARN"] == secret
    assert (env["SERVICE_TOKEN_ISSUER"], env["SERVICE_TOKEN_SUBJECT"], env["SERVICE_TOKEN_AUDIENCE"]) == (
        IDENTITY.issuer, IDENTITY.subject, IDENTITY.audience)
    assert env["SERVICE_TOKEN_TTL_SECONDS"] == "300"
    for name in ("orders-get", "orders-list", "auth-token"):
        assert not any(k.startswith("SERVICE_TOKEN") for k in function(graph, name).inputs["environment"]["variables"])

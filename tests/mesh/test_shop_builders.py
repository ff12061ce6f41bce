"""The shop's Istio resources: routes, retries split by method, the circuit breaker, who may call whom."""

from __future__ import annotations

import jsonschema
import pytest

from mesh import shop
from mesh.gateway import IngressSettings, gateway
from mesh.shop import CircuitBreakerSettings, ShopService, ShopSettings
from tests.mesh.schema import validate


def routes_by_name(settings: ShopSettings) -> dict[str, dict]:
    vs = validate(shop.virtual_service(settings))
    return {r["name"]: r for r in vs["spec"]["http"]}


def test_gateway_accepts_http_on_port_80_on_the_ingress_workload() -> None:
    gw = validate(gateway(IngressSettings()))
    assert gw["metadata"] == {"name": "ingress", "namespace": "istio-ingress"}
    assert gw["spec"]["selector"] == {"istio": "ingressgateway"}
    assert gw["spec"]["servers"] == [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]


def test_each_prefix_routes_to_its_service() -> None:
    routes = routes_by_name(ShopSettings())
    expected = {
        "inventory": ("/api/inventory", "inventory.shop.svc.cluster.local"),
        "product": ("/api/products", "product.shop.svc.cluster.local"),
        "notification": ("/api/notifications", "notification.shop.svc.cluster.local"),
    }
    for name, (prefix, host) in expected.items():
        for kind in ("read", "write"):
            route = routes[f"{name}-{kind}"]
            assert [d["destination"]["host"] for d in route["route"]] == [host]
            uris = [m["uri"] for m in route["match"]]
            assert uris == [{"exact": prefix}, {"prefix": prefix + "/"}]


def test_read_routes_match_only_safe_methods_and_come_before_writes() -> None:
    vs = validate(shop.virtual_service(ShopSettings()))
    names = [r["name"] for r in vs["spec"]["http"]]
    for svc in ("inventory", "product", "notification"):
        assert names.index(f"{svc}-read") < names.index(f"{svc}-write")
    read = routes_by_name(ShopSettings())["inventory-read"]
    assert all(m["method"] == {"regex": "GET|HEAD"} for m in read["match"])
    write = routes_by_name(ShopSettings())["inventory-write"]
    assert all("method" not in m for m in write["match"])


def test_reads_retry_on_5xx_but_writes_only_when_the_request_never_reached_the_app() -> None:
    routes = routes_by_name(ShopSettings())
    assert routes["inventory-read"]["retries"] == {
        "attempts": 3,
        "perTryTimeout": "2s",
        "retryOn": "5xx,connect-failure,reset",
    }
    write = routes["inventory-write"]["retries"]
    assert set(write["retryOn"].split(",")) == {"connect-failure", "refused-stream"}
    assert routes["inventory-write"]["timeout"] == "5s"


def test_shop_virtual_service_is_bound_to_the_ingress_gateway() -> None:
    vs = validate(shop.virtual_service(ShopSettings(ingress=IngressSettings(name="gw", namespace="edge"))))
    assert vs["spec"]["gateways"] == ["edge/gw"]
    assert vs["spec"]["hosts"] == ["*"]


def test_inventory_circuit_breaker_uses_the_seed_values_and_current_field_names() -> None:
    settings = ShopSettings()
    dr = validate(shop.destination_rule(settings, settings.service("inventory")))
    policy = dr["spec"]["trafficPolicy"]
    assert dr["spec"]["host"] == "inventory.shop.svc.cluster.local"
    assert policy["tls"] == {"mode": "ISTIO_MUTUAL"}
    assert policy["connectionPool"] == {
        "tcp": {"maxConnections": 100},
        "http": {"http1MaxPendingRequests": 50, "maxRequestsPerConnection": 2},
    }
    assert policy["outlierDetection"] == {
        "consecutive5xxErrors": 5,
        "interval": "30s",
        "baseEjectionTime": "30s",
        "maxEjectionPercent": 50,
    }


def test_circuit_breaker_values_come_from_settings() -> None:
    breaker = CircuitBreakerSettings(max_connections=7, consecutive_5xx_errors=2, interval="1s")
    settings = ShopSettings(services=(ShopService(name="inventory", prefix="/api/inventory", circuit_breaker=breaker),))
    policy = validate(shop.destination_rule(settings, settings.services[0]))["spec"]["trafficPolicy"]
    assert policy["connectionPool"]["tcp"]["maxConnections"] == 7
    assert policy["outlierDetection"]["consecutive5xxErrors"] == 2
    assert policy["outlierDetection"]["interval"] == "1s"


def test_services_without_a_breaker_get_mtls_only() -> None:
    settings = ShopSettings()
    dr = validate(shop.destination_rule(settings, settings.service("product")))
    assert dr["spec"]["trafficPolicy"] == {"tls": {"mode": "ISTIO_MUTUAL"}}


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"max_connections": 0}, "circuitBreaker.maxConnections"),
        ({"http1_max_pending_requests": -1}, "circuitBreaker.http1MaxPendingRequests"),
        ({"max_ejection_percent": 101}, "circuitBreaker.maxEjectionPercent"),
        ({"interval": "30"}, "circuitBreaker.interval"),
    ],
)
def test_bad_circuit_breaker_settings_raise_naming_the_key(kwargs: dict[str, object], key: str) -> None:
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        CircuitBreakerSettings(**kwargs)  # type: ignore[arg-type]


def test_only_the_ingress_gateway_may_call_a_service_by_default() -> None:
    settings = ShopSettings()
    policy = validate(shop.authorization_policy(settings, settings.service("inventory")))
    assert policy["spec"]["selector"] == {"matchLabels": {"app": "inventory"}}
    assert policy["spec"]["action"] == "ALLOW"
    assert policy["spec"]["rules"] == [
        {"from": [{"source": {"principals": ["cluster.local/ns/istio-ingress/sa/istio-ingressgateway"]}}]}
    ]


def test_declared_in_mesh_callers_are_allowed_by_their_service_account() -> None:
    services = (
        ShopService(name="inventory", prefix="/api/inventory", callers=("product",)),
        ShopService(name="product", prefix="/api/products"),
    )
    settings = ShopSettings(namespace="shop", services=services)
    policy = validate(shop.authorization_policy(settings, settings.service("inventory")))
    principals = policy["spec"]["rules"][0]["from"][0]["source"]["principals"]
    assert principals == ["cluster.local/ns/istio-ingress/sa/istio-ingressgateway", "cluster.local/ns/shop/sa/product"]
    product_policy = shop.authorization_policy(settings, settings.service("product"))
    assert "cluster.local/ns/shop/sa/inventory" not in str(product_policy)


def test_an_unknown_caller_raises() -> None:
    with pytest.raises(ValueError, match=r"inventory\.callers"):
        ShopSettings(services=(ShopService(name="inventory", prefix="/api/inventory", callers=("billing",)),))


def test_namespace_is_closed_by_default() -> None:
    deny = validate(shop.deny_all_policy("shop"))
    assert deny["spec"] == {}
    assert deny["kind"] == "AuthorizationPolicy"


def test_policy_selectors_match_deployment_labels() -> None:
    settings = ShopSettings()
    for svc in settings.services:
        policy = shop.authorization_policy(settings, svc)
        assert policy["spec"]["selector"]["matchLabels"].items() <= svc.labels.items()
        assert svc.selector.items() <= svc.labels.items()


def test_every_shop_manifest_is_schema_valid() -> None:
    manifests = shop.shop_manifests(ShopSettings())
    kinds = [m["kind"] for m in manifests]
    assert kinds.count("AuthorizationPolicy") == 4 and kinds.count("DestinationRule") == 3
    for m in manifests:
        validate(m)


def test_schema_check_rejects_the_seeds_deprecated_field_name() -> None:
    settings = ShopSettings()
    dr = shop.destination_rule(settings, settings.service("inventory"))
    dr["spec"]["trafficPolicy"]["outlierDetection"]["consecutiveErrors"] = 5
    with pytest.raises(jsonschema.ValidationError, match="consecutiveErrors"):
        validate(dr)


def test_prefix_with_trailing_slash_raises() -> None:
    with pytest.raises(ValueError, match="prefix"):
        ShopService(name="x", prefix="/api/x/")

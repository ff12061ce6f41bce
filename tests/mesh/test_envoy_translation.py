"""The Istio -> Envoy translation, checked on the dicts it produces (and once by Envoy's own validator)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mesh import canary, shop
from mesh import envoy as me
from mesh.canary import CanarySettings, RetrySettings
from mesh.envoy import ListenerSpec, UnsupportedSpec
from mesh.shop import ShopSettings

C = CanarySettings()
V1 = me.cluster_name(C.host, "v1", 80)
V2 = me.cluster_name(C.host, "v2", 80)
INVENTORY = me.cluster_name("inventory.shop.svc.cluster.local", None, 80)
INGRESS = C.gateways[0]


def canary_config(weight: int = 10, **kwargs: Any) -> me.EnvoyResources:
    settings = CanarySettings(canary_weight=weight, **kwargs)
    endpoints = {(settings.host, "v1"): [("127.0.0.1", 9001)], (settings.host, "v2"): [("127.0.0.1", 9002)]}
    listener = ListenerSpec(name="canary", port=10080, gateway=INGRESS, default_host=settings.host)
    return me.translate([canary.virtual_service(settings)], [canary.destination_rule(settings)], endpoints, [listener])


def shop_config(settings: ShopSettings | None = None) -> me.EnvoyResources:
    settings = settings or ShopSettings()
    drs = [shop.destination_rule(settings, svc) for svc in settings.services]
    listener = ListenerSpec(name="shop", port=10081, gateway=settings.ingress.ref)
    return me.translate([shop.virtual_service(settings)], drs, {}, [listener])


def routes(resources: me.EnvoyResources, listener: str = "canary") -> list[dict[str, Any]]:
    (vhost,) = resources.route_config(listener)["virtual_hosts"]
    return list(vhost["routes"])


def split(resources: me.EnvoyResources) -> dict[str, Any]:
    return routes(resources)[-1]["route"]


def test_canary_weight_becomes_weighted_clusters_per_subset() -> None:
    assert split(canary_config(10))["weighted_clusters"] == {
        "clusters": [{"name": V1, "weight": 90}, {"name": V2, "weight": 10}]
    }


def test_weight_zero_drops_the_canary_cluster_from_the_route() -> None:
    action = split(canary_config(0))
    assert action["cluster"] == V1
    assert "weighted_clusters" not in action


def test_weight_100_sends_everything_to_the_canary() -> None:
    assert split(canary_config(100))["cluster"] == V2


def test_header_route_comes_first_and_matches_x_canary_exactly() -> None:
    first = routes(canary_config(0))[0]
    assert first["match"] == {"prefix": "/", "headers": [{"name": "x-canary", "string_match": {"exact": "always"}}]}
    assert first["route"]["cluster"] == V2


def test_split_route_catches_every_path() -> None:
    assert routes(canary_config(50))[-1]["match"] == {"prefix": "/"}


def test_retries_and_timeout_are_translated() -> None:
    retries = RetrySettings(attempts=3, per_try_timeout="250ms", retry_on="gateway-error,connect-failure")
    action = split(canary_config(10, retries=retries, timeout="4s"))
    assert action["timeout"] == "4s"
    policy = action["retry_policy"]
    assert policy["retry_on"] == "gateway-error,connect-failure"
    assert policy["num_retries"] == 3
    assert policy["per_try_timeout"] == "0.25s"
    assert policy["retry_host_predicate"][0]["name"] == "envoy.retry_host_predicates.previous_hosts"


def test_zero_attempts_means_no_retry_policy() -> None:
    assert "retry_policy" not in split(canary_config(10, retries=RetrySettings(attempts=0)))


def test_status_codes_in_retry_on_become_retriable_status_codes() -> None:
    policy = split(canary_config(10, retries=RetrySettings(retry_on="502,503,connect-failure")))["retry_policy"]
    assert policy["retry_on"] == "connect-failure,retriable-status-codes"
    assert policy["retriable_status_codes"] == [502, 503]


def test_retry_on_without_status_codes_drops_the_default_503() -> None:
    policy = split(canary_config(10, retries=RetrySettings(retry_on="gateway-error")))["retry_policy"]
    assert policy["retry_on"] == "gateway-error"
    assert "retriable_status_codes" not in policy
    assert policy["host_selection_retry_max_attempts"] == 5


def test_route_without_retries_or_timeout_gets_istio_defaults() -> None:
    vs = canary.virtual_service(C)
    for http in vs["spec"]["http"]:
        del http["retries"], http["timeout"]
    listener = ListenerSpec(name="canary", port=1, gateway=INGRESS)
    resources = me.translate([vs], [canary.destination_rule(C)], {}, [listener])
    action = routes(resources)[-1]["route"]
    assert action["timeout"] == "0s"
    assert action["retry_policy"]["num_retries"] == 2
    assert action["retry_policy"]["retry_on"] == me.ISTIO_DEFAULT_RETRY_ON
    assert action["retry_policy"]["retriable_status_codes"] == [503]


def test_endpoints_become_the_subset_clusters_load_assignment() -> None:
    cluster = canary_config(10).cluster(V2)
    (locality,) = cluster["load_assignment"]["endpoints"]
    assert locality["lb_endpoints"] == [
        {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 9002}}}}
    ]
    assert cluster["type"] == "STATIC"


def test_a_subset_without_endpoints_is_a_cluster_with_no_hosts() -> None:
    settings = CanarySettings(canary_weight=100, retire_stable=True)
    listener = ListenerSpec(name="canary", port=1, gateway=INGRESS)
    endpoints = {(settings.host, "v2"): [("127.0.0.1", 9002)]}
    resources = me.translate(
        [canary.virtual_service(settings)], [canary.destination_rule(settings)], endpoints, [listener]
    )
    assert resources.cluster(V1)["load_assignment"]["endpoints"] == [{"lb_endpoints": []}]


def test_clusters_without_a_connection_pool_have_unlimited_breakers_like_istio() -> None:
    (thresholds,) = canary_config(10).cluster(V1)["circuit_breakers"]["thresholds"]
    assert thresholds["max_connections"] == thresholds["max_pending_requests"] == me.UNLIMITED
    assert thresholds["max_retries"] == me.UNLIMITED


def test_connection_pool_becomes_circuit_breaker_thresholds() -> None:
    cluster = shop_config().cluster(INVENTORY)
    (thresholds,) = cluster["circuit_breakers"]["thresholds"]
    assert thresholds["max_connections"] == 100
    assert thresholds["max_pending_requests"] == 50
    options = cluster["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert options["common_http_protocol_options"] == {"max_requests_per_connection": 2}


def test_outlier_detection_is_translated_field_by_field() -> None:
    cluster = shop_config().cluster(INVENTORY)
    assert cluster["outlier_detection"] == {
        "enforcing_success_rate": 0,
        "consecutive_5xx": 5,
        "enforcing_consecutive_5xx": 100,
        "interval": "30s",
        "base_ejection_time": "30s",
        "max_ejection_percent": 50,
    }
    assert cluster["common_lb_config"] == {"healthy_panic_threshold": {"value": 0.0}}


def test_services_without_a_breaker_get_no_outlier_detection() -> None:
    cluster = shop_config().cluster(me.cluster_name("product.shop.svc.cluster.local", None, 80))
    assert "outlier_detection" not in cluster


def test_shop_prefixes_become_exact_and_prefix_routes_with_reads_first() -> None:
    shop_routes = routes(shop_config(), "shop")
    inventory = [r for r in shop_routes if r["route"]["cluster"] == INVENTORY]
    assert [r["match"].get("path") or r["match"].get("prefix") for r in inventory] == [
        "/api/inventory",
        "/api/inventory/",
        "/api/inventory",
        "/api/inventory/",
    ]
    read = inventory[0]
    assert read["match"]["headers"] == [{"name": ":method", "string_match": {"safe_regex": {"regex": "GET|HEAD"}}}]
    assert "5xx" in read["route"]["retry_policy"]["retry_on"]
    assert "5xx" not in inventory[2]["route"]["retry_policy"]["retry_on"]


def test_shop_virtual_host_answers_any_host() -> None:
    (vhost,) = shop_config().route_config("shop")["virtual_hosts"]
    assert vhost["domains"] == ["*"]


def test_service_hosts_answer_to_their_short_names_and_default_host_to_anything() -> None:
    (vhost,) = canary_config(10).route_config("canary")["virtual_hosts"]
    assert vhost["domains"] == [
        "myapp-service.canary.svc.cluster.local",
        "myapp-service.canary.svc",
        "myapp-service.canary",
        "myapp-service",
        "*",
    ]


def test_a_listener_only_serves_virtual_services_bound_to_its_gateway() -> None:
    settings = ShopSettings()
    mesh_view = ListenerSpec(name="sidecar", port=1, gateway="mesh")
    resources = me.translate(
        [shop.virtual_service(settings), canary.virtual_service(C)], [canary.destination_rule(C)], {}, [mesh_view]
    )
    assert [v["name"] for v in resources.route_config("sidecar")["virtual_hosts"]] == ["canary/myapp-vs"]


def test_two_virtual_services_claiming_the_same_host_raise() -> None:
    listener = ListenerSpec(name="both", port=1, gateway=INGRESS, default_host=C.host)
    with pytest.raises(UnsupportedSpec, match="claimed by both"):
        me.translate(
            [canary.virtual_service(C), shop.virtual_service(ShopSettings())],
            [canary.destination_rule(C)],
            {},
            [listener],
        )


def test_weights_not_summing_to_100_raise() -> None:
    vs = canary.virtual_service(CanarySettings(canary_weight=10))
    vs["spec"]["http"][1]["route"][0]["weight"] = 80
    with pytest.raises(UnsupportedSpec, match="sum to 90"):
        me.translate([vs], [canary.destination_rule(C)], {}, [ListenerSpec(name="l", port=1, gateway=INGRESS)])


def test_a_route_to_an_undeclared_subset_raises() -> None:
    dr = canary.destination_rule(C)
    dr["spec"]["subsets"] = dr["spec"]["subsets"][:1]
    with pytest.raises(UnsupportedSpec, match="no subset 'v2'"):
        me.translate([canary.virtual_service(C)], [dr], {}, [ListenerSpec(name="l", port=1, gateway=INGRESS)])


def test_untranslated_istio_features_raise_instead_of_being_ignored() -> None:
    vs = canary.virtual_service(C)
    vs["spec"]["http"][1]["fault"] = {"abort": {"httpStatus": 500, "percentage": {"value": 10}}}
    with pytest.raises(UnsupportedSpec, match="fault"):
        me.translate([vs], [canary.destination_rule(C)], {}, [ListenerSpec(name="l", port=1, gateway=INGRESS)])


def test_subset_traffic_policy_overrides_the_rules_policy() -> None:
    dr = canary.destination_rule(C)
    dr["spec"]["trafficPolicy"]["connectionPool"] = {"tcp": {"maxConnections": 10}}
    dr["spec"]["subsets"][1]["trafficPolicy"] = {"connectionPool": {"tcp": {"maxConnections": 3}}}
    listener = ListenerSpec(name="l", port=1, gateway=INGRESS)
    resources = me.translate([canary.virtual_service(CanarySettings(canary_weight=10))], [dr], {}, [listener])
    assert resources.cluster(V1)["circuit_breakers"]["thresholds"][0]["max_connections"] == 10
    assert resources.cluster(V2)["circuit_breakers"]["thresholds"][0]["max_connections"] == 3


def test_listeners_bind_loopback_and_read_routes_from_a_watched_file(tmp_path: Path) -> None:
    listener = ListenerSpec(name="canary", port=10080, gateway=INGRESS, default_host=C.host)
    resources = me.translate(
        [canary.virtual_service(C)], [canary.destination_rule(C)], {}, [listener],
        rds_paths={"canary": str(tmp_path / "rds-canary.json")},
    )
    (out,) = resources.listeners
    assert out["address"] == {"socket_address": {"address": "127.0.0.1", "port_value": 10080}}
    hcm = out["filter_chains"][0]["filters"][0]["typed_config"]
    assert hcm["rds"]["config_source"]["path_config_source"] == {"path": str(tmp_path / "rds-canary.json")}
    assert "route_config" not in hcm


def _static(resources: me.EnvoyResources) -> dict[str, Any]:
    def strip(resource: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in copy.deepcopy(resource).items() if k != "@type"}

    listeners = [strip(listener) for listener in resources.listeners]
    for listener in listeners:
        listener["filter_chains"][0]["filters"][0]["typed_config"]["route_config"].pop("@type", None)
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {"listeners": listeners, "clusters": [strip(c) for c in resources.clusters]},
    }


def test_envoy_itself_accepts_the_translated_canary_and_shop(tmp_path: Path) -> None:
    settings = ShopSettings()
    vss = [canary.virtual_service(CanarySettings(canary_weight=10)), shop.virtual_service(settings)]
    drs = [canary.destination_rule(C)] + [shop.destination_rule(settings, s) for s in settings.services]
    listeners = [
        ListenerSpec(name="canary", port=10080, gateway=INGRESS, virtual_services=("myapp-vs",), default_host=C.host),
        ListenerSpec(name="shop", port=10081, gateway=INGRESS, virtual_services=("shop-vs",)),
    ]
    # With the OpenTelemetry tracer on, as the twin runs it: Envoy validates the tracer's config too.
    resources = me.translate(vss, drs, {(C.host, "v1"): [("127.0.0.1", 9001)]}, listeners,
                             tracing=me.OtlpCollector(host="127.0.0.1", port=4318))
    config = tmp_path / "static.json"
    config.write_text(json.dumps(_static(resources)))
    envoy = Path(sys.executable).parent / "envoy"
    result = subprocess.run(
        [str(envoy), "--mode", "validate", "-c", str(config), "--disable-hot-restart"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout + result.stderr


def test_tracing_puts_the_opentelemetry_tracer_on_every_listener_with_a_collector_cluster() -> None:
    settings = CanarySettings()
    listener = ListenerSpec(name="ingress", port=10080, gateway=INGRESS, default_host=settings.host)
    traced = me.translate([canary.virtual_service(settings)], [canary.destination_rule(settings)], {}, [listener],
                          tracing=me.OtlpCollector(host="127.0.0.1", port=4318))
    hcm = traced.listeners[0]["filter_chains"][0]["filters"][0]["typed_config"]
    provider = hcm["tracing"]["provider"]
    assert provider["name"] == "envoy.tracers.opentelemetry"
    assert provider["typed_config"]["service_name"] == "envoy-ingress"
    assert provider["typed_config"]["http_service"]["http_uri"] == {
        "uri": "http://127.0.0.1:4318/v1/traces", "cluster": me.COLLECTOR_CLUSTER, "timeout": "1s"}
    (collector,) = [c for c in traced.clusters if c["name"] == me.COLLECTOR_CLUSTER]
    address = collector["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
    assert address == {"socket_address": {"address": "127.0.0.1", "port_value": 4318}}
    plain = canary_config()
    assert "tracing" not in plain.listeners[0]["filter_chains"][0]["filters"][0]["typed_config"]
    assert me.COLLECTOR_CLUSTER not in {c["name"] for c in plain.clusters}


def test_endpoints_follow_service_selectors_and_subset_labels() -> None:
    settings = CanarySettings()
    services = [
        me.ServiceRef(name=settings.service_name, namespace=settings.namespace, selector=settings.service_selector())
    ]
    workloads = [
        me.Workload(namespace="canary", labels=settings.deployment_labels("v1"), address=("127.0.0.1", 9001)),
        me.Workload(namespace="canary", labels=settings.deployment_labels("v2"), address=("127.0.0.1", 9002)),
        me.Workload(namespace="other", labels=settings.deployment_labels("v2"), address=("127.0.0.1", 9003)),
        me.Workload(namespace="canary", labels={"app": "else", "version": "v1"}, address=("127.0.0.1", 9004)),
    ]
    endpoints = me.endpoints_for(services, workloads, [canary.destination_rule(settings)])
    assert endpoints == {
        (settings.host, None): [("127.0.0.1", 9001), ("127.0.0.1", 9002)],
        (settings.host, "v1"): [("127.0.0.1", 9001)],
        (settings.host, "v2"): [("127.0.0.1", 9002)],
    }


def test_a_deployment_label_drift_leaves_its_subset_empty() -> None:
    settings = CanarySettings()
    services = [
        me.ServiceRef(name=settings.service_name, namespace=settings.namespace, selector=settings.service_selector())
    ]
    drifted = me.Workload(namespace="canary", labels={"app": "myapp", "version": "2.0.0"}, address=("127.0.0.1", 9002))
    endpoints = me.endpoints_for(services, [drifted], [canary.destination_rule(settings)])
    assert endpoints[(settings.host, "v2")] == []

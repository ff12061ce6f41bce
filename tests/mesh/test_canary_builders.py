"""The canary's Istio resources: one test per behaviour, every manifest checked against the CRD schema."""

from __future__ import annotations

import jsonschema
import pytest

from mesh import canary
from mesh.canary import CanarySettings, RetrySettings
from mesh.gateway import IngressSettings
from tests.mesh.schema import validate


def split_weights(settings: CanarySettings) -> dict[str, int]:
    vs = validate(canary.virtual_service(settings))
    (split,) = [r for r in vs["spec"]["http"] if r["name"] == canary.SPLIT_ROUTE_NAME]
    return {d["destination"]["subset"]: d["weight"] for d in split["route"]}


@pytest.mark.parametrize(
    ("weight", "expected"),
    [(0, {"v1": 100, "v2": 0}), (10, {"v1": 90, "v2": 10}), (50, {"v1": 50, "v2": 50}), (100, {"v1": 0, "v2": 100})],
)
def test_split_route_gives_canary_its_weight_and_stable_the_rest(weight: int, expected: dict[str, int]) -> None:
    assert split_weights(CanarySettings(canary_weight=weight)) == expected


def test_weights_always_sum_to_100() -> None:
    for weight in range(101):
        assert sum(split_weights(CanarySettings(canary_weight=weight)).values()) == 100


def test_header_route_is_listed_first_and_always_targets_the_canary() -> None:
    vs = validate(canary.virtual_service(CanarySettings(canary_weight=0)))
    first = vs["spec"]["http"][0]
    assert first["name"] == "canary-header"
    assert first["match"] == [{"headers": {"x-canary": {"exact": "always"}}}]
    assert [(d["destination"]["subset"], d["weight"]) for d in first["route"]] == [("v2", 100)]


def test_there_is_exactly_one_split_route_after_the_header_route() -> None:
    vs = validate(canary.virtual_service(CanarySettings(canary_weight=10)))
    assert [r["name"] for r in vs["spec"]["http"]] == ["canary-header", "split"]
    assert "match" not in vs["spec"]["http"][1]


def test_virtual_service_is_bound_to_the_ingress_gateway_and_the_mesh() -> None:
    ingress = IngressSettings(name="public", namespace="istio-ingress")
    vs = validate(canary.virtual_service(CanarySettings(gateways=(ingress.ref,))))
    assert vs["spec"]["gateways"] == ["istio-ingress/public", "mesh"]


def test_routes_and_destination_rule_use_the_service_fqdn() -> None:
    settings = CanarySettings(namespace="canary", service_name="myapp-service")
    vs = validate(canary.virtual_service(settings))
    dr = validate(canary.destination_rule(settings))
    assert vs["spec"]["hosts"][0] == dr["spec"]["host"] == "myapp-service.canary.svc.cluster.local"
    hosts = {d["destination"]["host"] for r in vs["spec"]["http"] for d in r["route"]}
    assert hosts == {dr["spec"]["host"]}
    ports = {d["destination"]["port"]["number"] for r in vs["spec"]["http"] for d in r["route"]}
    assert ports == {80}


def test_subsets_select_exactly_the_labels_the_deployments_carry() -> None:
    settings = CanarySettings()
    dr = validate(canary.destination_rule(settings))
    for subset in dr["spec"]["subsets"]:
        labels = settings.deployment_labels(subset["name"])
        assert subset["labels"].items() <= labels.items()
        assert labels.items() >= settings.service_selector().items()
    assert [s["name"] for s in dr["spec"]["subsets"]] == ["v1", "v2"]


def test_service_selector_is_app_only_so_both_versions_sit_behind_it() -> None:
    settings = CanarySettings()
    assert settings.service_selector() == {"app": "myapp"}
    assert settings.deployment_labels("v1") == {"app": "myapp", "version": "v1"}
    assert settings.deployment_name("v2") == "myapp-v2"


def test_deployment_labels_reject_an_unknown_version() -> None:
    with pytest.raises(ValueError, match="version"):
        CanarySettings().deployment_labels("v3")


def test_destination_rule_uses_istio_mutual_tls() -> None:
    dr = validate(canary.destination_rule(CanarySettings()))
    assert dr["spec"]["trafficPolicy"]["tls"] == {"mode": "ISTIO_MUTUAL"}


def test_peer_authentication_is_strict_for_the_namespace() -> None:
    pa = validate(canary.peer_authentication("canary"))
    assert pa["apiVersion"] == "security.istio.io/v1"
    assert pa["metadata"] == {"name": "default", "namespace": "canary"}
    assert pa["spec"] == {"mtls": {"mode": "STRICT"}}


def test_retries_and_timeout_come_from_settings_on_both_routes() -> None:
    settings = CanarySettings(
        retries=RetrySettings(attempts=3, per_try_timeout="1500ms", retry_on="5xx,connect-failure"), timeout="4s"
    )
    vs = validate(canary.virtual_service(settings))
    for route in vs["spec"]["http"]:
        assert route["retries"] == {"attempts": 3, "perTryTimeout": "1500ms", "retryOn": "5xx,connect-failure"}
        assert route["timeout"] == "4s"


def test_zero_retry_attempts_disable_retries() -> None:
    vs = validate(canary.virtual_service(CanarySettings(retries=RetrySettings(attempts=0))))
    assert vs["spec"]["http"][1]["retries"] == {"attempts": 0}


def test_manifests_use_current_api_versions() -> None:
    versions = {(m["apiVersion"], m["kind"]) for m in canary.canary_manifests(CanarySettings())}
    assert versions == {
        ("security.istio.io/v1", "PeerAuthentication"),
        ("networking.istio.io/v1", "DestinationRule"),
        ("networking.istio.io/v1", "VirtualService"),
    }


@pytest.mark.parametrize("weight", [-1, 101, 10.5, "10", True])
def test_weight_outside_0_to_100_raises_naming_canary_weight(weight: object) -> None:
    with pytest.raises(ValueError, match="canaryWeight"):
        CanarySettings(canary_weight=weight)  # type: ignore[arg-type]


@pytest.mark.parametrize("weight", [0, 10, 50, 99])
def test_retiring_stable_while_it_still_gets_traffic_raises_naming_both_keys(weight: int) -> None:
    with pytest.raises(ValueError, match="retireStable") as err:
        CanarySettings(canary_weight=weight, retire_stable=True)
    assert "canaryWeight" in str(err.value)


def test_retiring_stable_at_100_keeps_a_valid_route_and_stops_the_stable_deployment() -> None:
    settings = CanarySettings(canary_weight=100, retire_stable=True)
    assert split_weights(settings) == {"v1": 0, "v2": 100}
    assert settings.replicas_enabled("v1") is False
    assert settings.replicas_enabled("v2") is True


def test_rollback_is_one_change_back() -> None:
    assert split_weights(CanarySettings(canary_weight=0)) == {"v1": 100, "v2": 0}
    assert CanarySettings(canary_weight=0).replicas_enabled("v1") is True


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"timeout": "soon"}, "timeout"),
        ({"timeout": "0s"}, "timeout"),
        ({"retries": RetrySettings(per_try_timeout="x")}, "retries.perTryTimeout"),
        ({"retries": RetrySettings(retry_on="5xx,sometimes")}, "retries.retryOn"),
        ({"retries": RetrySettings(attempts=-1)}, "retries.attempts"),
    ],
)
def test_bad_retry_or_timeout_settings_raise_naming_the_key(kwargs: dict[str, object], key: str) -> None:
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        CanarySettings(**kwargs)  # type: ignore[arg-type]


def test_retry_on_accepts_status_codes_like_istio() -> None:
    vs = validate(canary.virtual_service(CanarySettings(retries=RetrySettings(retry_on="503,connect-failure"))))
    assert vs["spec"]["http"][1]["retries"]["retryOn"] == "503,connect-failure"


def test_schema_check_rejects_a_misspelt_field() -> None:
    vs = canary.virtual_service(CanarySettings())
    vs["spec"]["http"][1]["retries"]["retryOnn"] = "5xx"
    with pytest.raises(jsonschema.ValidationError):
        validate(vs)


@pytest.mark.parametrize("weight", [0, 10, 50, 100])
def test_the_routed_weight_of_a_virtual_service_is_the_canary_weight_it_was_built_with(weight: int) -> None:
    spec = canary.virtual_service(CanarySettings(canary_weight=weight))["spec"]
    assert canary.routed_weight(spec, "v2") == weight
    assert canary.routed_weight(spec, "v1") == 100 - weight
    assert canary.routed_weight(spec, "v3") == 0


def test_a_virtual_service_without_the_split_route_has_no_routed_weight() -> None:
    assert canary.routed_weight({"http": [{"name": "other", "route": []}]}, "v2") is None

"""`otlpEndpoint`: validated at preview naming the key; empty keeps tracing off; set, it reaches the traced
functions' and the services' environment and Istio (meshConfig's OpenTelemetry provider + a mesh-wide Telemetry)."""

from __future__ import annotations

import pytest

from infra.config import ConfigError, parse_stack_config, stack_config_values
from mesh.tracing import PROVIDER, extension_provider, mesh_telemetry, otlp_target
from sim.capture import Graph
from tests.infra.conftest import Capture
from tests.infra.platform_program import mesh_graph
from tests.infra.test_platform import release
from tests.infra.test_shop import container, env_of, function, shop_graph
from tests.mesh.schema import validate

ENDPOINT = "http://otel-collector.observability:4318"
TRACED_FUNCTIONS = ("auth-register", "auth-token", "auth-authorizer", "orders-create", "orders-get", "orders-list")
TELEMETRY = "kubernetes:telemetry.istio.io/v1:Telemetry"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
FUNCTION = "aws:lambda/function:Function"


@pytest.mark.parametrize("value", ["otel-collector:4318", "ftp://collector", "http://", "http://c:4318/?x=1"])
def test_a_bad_otlp_endpoint_names_the_key_and_what_is_allowed(value: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_stack_config(stack_config_values("dev", {"otlpEndpoint": value}).project_raw())
    assert str(err.value) == ("serverless-mesh:otlpEndpoint must be empty (tracing off) or an OTLP/HTTP base URL "
                              f'such as http://otel-collector.observability:4318, got "{value}"')


def test_the_dev_stack_traces_nothing_in_the_cloud() -> None:
    assert parse_stack_config(stack_config_values("dev").project_raw()).otlp_endpoint == ""


def test_the_traces_path_is_appended_to_the_base_as_the_exporters_do() -> None:
    assert otlp_target("http://c.ns:4318") == otlp_target("http://c.ns:4318/")
    assert otlp_target("http://c.ns:4318").traces_path == "/v1/traces"
    assert otlp_target("https://otlp.example.com/tenant-1").port == 443
    assert otlp_target("https://otlp.example.com/tenant-1").traces_path == "/tenant-1/v1/traces"


@pytest.fixture(scope="module")
def traced_shop() -> Graph:
    return shop_graph(otlpEndpoint=ENDPOINT)


def test_traced_functions_export_to_the_endpoint_and_to_nothing_by_default(traced_shop: Graph) -> None:
    default = shop_graph()
    for name in TRACED_FUNCTIONS:
        assert function(traced_shop, name).inputs["environment"]["variables"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == \
            ENDPOINT, name
        assert function(default, name).inputs["environment"]["variables"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "", name


def test_every_function_of_the_program_exports_to_the_endpoint_when_it_is_set(
        program_graph: Capture, dev_graph: Graph) -> None:
    # The TODO and image functions too: their entry points are `@traced` like the shop's.
    traced = program_graph({"otlpEndpoint": ENDPOINT}).of_type(FUNCTION)
    assert len(traced) >= 12
    for fn in traced:
        assert fn.inputs["environment"]["variables"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == ENDPOINT, fn.urn
    for fn in dev_graph.of_type(FUNCTION):
        assert fn.inputs["environment"]["variables"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "", fn.urn


def test_services_export_to_the_endpoint_only_when_it_is_set(traced_shop: Graph) -> None:
    traced = [env_of(container(d)) for d in traced_shop.of_type(DEPLOYMENT)
              if d.inputs["metadata"]["namespace"] == "shop"]
    assert traced and all(env["OTEL_EXPORTER_OTLP_ENDPOINT"] == ENDPOINT for env in traced)
    default = [env_of(container(d)) for d in shop_graph().of_type(DEPLOYMENT)
               if d.inputs["metadata"]["namespace"] == "shop"]
    assert default and not any("OTEL_EXPORTER_OTLP_ENDPOINT" in env for env in default)


def test_istio_gets_the_opentelemetry_provider_and_a_mesh_wide_telemetry_after_its_crds() -> None:
    graph = mesh_graph(otlpEndpoint=ENDPOINT)
    istiod = release(graph, "istiod")
    assert istiod.inputs["values"]["meshConfig"]["extensionProviders"] == [extension_provider(ENDPOINT)]
    assert extension_provider(ENDPOINT)["opentelemetry"] == {
        "service": "otel-collector.observability", "port": 4318, "http": {"path": "/v1/traces", "timeout": "5s"}}
    (telemetry,) = graph.of_type(TELEMETRY)
    assert telemetry.inputs["metadata"] == {"name": "mesh-default", "namespace": "istio-system"}
    assert telemetry.inputs["spec"]["tracing"][0]["providers"] == [{"name": PROVIDER}]
    assert {release(graph, "base").urn, istiod.urn} <= set(telemetry.dependencies)


def test_the_telemetry_passes_istios_crd_schema() -> None:
    validate(mesh_telemetry("istio-system"))


def test_without_an_endpoint_istio_has_no_tracing_provider() -> None:
    graph = mesh_graph()
    assert "extensionProviders" not in release(graph, "istiod").inputs["values"]["meshConfig"]
    assert not graph.of_type(TELEMETRY)

"""`canaryAnalysis` in the dev program under the mocks: Prometheus from its pinned chart under the platform and the
gate under the canary only when it is on, wired to each other and to the stack's kubeconfig; bad combinations stop
the preview naming the keys. (The ordering `pulumi up` depends on is in test_deploy_rehearsal.py.)"""

from __future__ import annotations

import pytest

from infra.config import ConfigError
from infra.gate import GATE_TYPE
from infra.monitoring import PROMETHEUS_CHART_VERSION, PROMETHEUS_CHARTS
from infra.prometheus import PrometheusService
from mesh.analysis import canary_target
from mesh.canary import CanarySettings
from sim.capture import Graph, Resource
from tests.infra.conftest import Capture

RELEASE = "kubernetes:helm.sh/v3:Release"
ON = {"canaryAnalysis": True}


@pytest.fixture(scope="module")
def analysed() -> Graph:
    from infra.config import stack_config_values
    from sim.capture import capture
    from tests.infra.conftest import TEST_SECRETS, run_main

    return capture(run_main, stack_config_values("dev", ON, secrets=TEST_SECRETS))


def prometheus(graph: Graph) -> list[Resource]:
    return [r for r in graph.of_type(RELEASE) if r.inputs.get("chart") == "prometheus"]


def ancestors(graph: Graph, resource: Resource) -> list[str]:
    names, parent = [], resource.parent
    while parent and not parent.endswith("::serverless-mesh-dev"):
        owner = graph.by_urn(parent)
        names.append(owner.name)
        parent = owner.parent
    return names


def test_analysis_off_by_default_installs_no_prometheus_and_no_gate(dev_graph: Graph) -> None:
    assert prometheus(dev_graph) == []
    assert dev_graph.of_type(GATE_TYPE) == []


def test_analysis_on_installs_prometheus_from_its_pinned_chart_under_the_platform(analysed: Graph) -> None:
    [release] = prometheus(analysed)
    service = PrometheusService()
    assert (release.inputs["version"], release.inputs["repositoryOpts"]["repo"]) == (PROMETHEUS_CHART_VERSION,
                                                                                     PROMETHEUS_CHARTS)
    assert (release.inputs["name"], release.inputs["namespace"]) == ("prometheus", service.namespace)
    assert f"{release.inputs['name']}-server" == service.name  # the Service the chart creates, which the gate asks
    assert release.inputs["values"]["server"]["service"]["servicePort"] == int(service.port)
    assert ancestors(analysed, release) == ["platform-monitoring", "platform"]
    assert release.inputs["skipAwait"] is False  # the gate's first query needs a running server


def test_prometheus_scrapes_only_the_pods_istio_annotated_every_15_seconds(analysed: Graph) -> None:
    values = prometheus(analysed)[0].inputs["values"]
    [job] = values["serverFiles"]["prometheus.yml"]["scrape_configs"]
    keep = job["relabel_configs"][0]
    assert (keep["action"], keep["source_labels"], keep["regex"]) == (
        "keep", ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"], "true")
    targets = {r.get("target_label") for r in job["relabel_configs"]}
    assert {"__metrics_path__", "__address__"} <= targets  # Istio's annotations: port 15020, /stats/prometheus
    assert values["server"]["global"]["scrape_interval"] == "15s"
    assert values["server"]["podLabels"] == {"sidecar.istio.io/inject": "false"}
    assert all(values[part]["enabled"] is False for part in ("alertmanager", "prometheus-pushgateway",
                                                             "kube-state-metrics", "prometheus-node-exporter"))


def test_the_gate_is_the_canarys_and_judges_v2_with_the_stacks_settings(analysed: Graph) -> None:
    gate = analysed.one(GATE_TYPE)
    target = canary_target(CanarySettings())
    assert ancestors(analysed, gate) == ["canary"]
    assert gate.inputs["weight"] == 10  # Pulumi.dev.yaml's canaryWeight
    assert {k: gate.inputs[k] for k in ("maxErrorPercent", "maxP99Ms", "minRequests", "windowSeconds")} == {
        "maxErrorPercent": 1.0, "maxP99Ms": 500, "minRequests": 50, "windowSeconds": 60}  # Pulumi.yaml's defaults
    assert (gate.inputs["namespace"], gate.inputs["workload"], gate.inputs["version"]) == (
        target.namespace, target.workload, target.version)
    [routes] = [r for r in analysed.of_type("kubernetes:networking.istio.io/v1:VirtualService")
                if r.parent == gate.parent]
    assert gate.inputs["virtualService"] == routes.inputs["metadata"]["name"]  # the one it reads on creation
    service = PrometheusService()
    assert (gate.inputs["prometheusNamespace"], gate.inputs["prometheusService"], gate.inputs["prometheusPort"]) == (
        service.namespace, service.name, service.port)


def test_the_gate_reads_the_stacks_kubeconfig_kept_secret_in_the_state(analysed: Graph) -> None:
    gate = analysed.one(GATE_TYPE)
    assert gate.inputs["kubeconfig"] == analysed.exports["kubeconfig"]
    assert "kubeconfig" in gate.secret_paths
    assert "kubeconfig" not in gate.outputs


def test_the_gate_follows_the_weight_the_stack_sets(program_graph: Capture) -> None:
    graph = program_graph({**ON, "canaryWeight": 50, "canaryMaxErrorPercent": "0.5", "canaryAnalysisSeconds": 120})
    gate = graph.one(GATE_TYPE)
    assert (gate.inputs["weight"], gate.inputs["maxErrorPercent"], gate.inputs["windowSeconds"]) == (50, 0.5, 120)


@pytest.mark.parametrize("window", [1, 29])
def test_a_window_shorter_than_two_scrapes_fails_at_preview_naming_both_keys(program_graph: Capture,
                                                                             window: int) -> None:
    with pytest.raises(ConfigError, match=r"canaryAnalysisSeconds must be at least 30 \(two Prometheus scrape "
                                          rf"intervals of 15 s\) while serverless-mesh:canaryAnalysis is true, got "
                                          rf"{window}"):
        program_graph({**ON, "canaryAnalysisSeconds": window})


def test_a_short_window_is_fine_without_prometheus(program_graph: Capture) -> None:
    # The twin's rollout judges Envoy's own counters, which need no scrape interval.
    assert program_graph({"canaryAnalysisSeconds": 6}).of_type(GATE_TYPE) == []


def test_the_mock_refuses_gate_inputs_the_provider_would(analysed: Graph) -> None:
    from sim.rules import CloudRejection, check

    gate = analysed.one(GATE_TYPE)
    check(gate.type, gate.name, gate.inputs)
    with pytest.raises(CloudRejection, match="weight: canaryWeight must be between 0 and 100, got 150"):
        check(gate.type, gate.name, {**gate.inputs, "weight": 150})

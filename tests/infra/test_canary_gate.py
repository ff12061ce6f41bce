"""infra.gate, the canary gate inside `pulumi up`, called as the engine calls its provider: `diff` on every preview
and update, `create`/`update` only when an update applies a weight change. With a fake metric source (what is
judged, and that a rollback never queries), then through the real HTTP path: the stack's kubeconfig, the API
server's service proxy and Prometheus, all fakes on 127.0.0.1."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

import pytest

from infra.gate import (
    CanaryGateArgs,
    CanaryGateProvider,
    GateFailure,
    GateInputError,
    GateInputs,
    gate_props,
    input_failures,
)
from infra.prometheus import PrometheusService
from mesh.analysis import AnalysisSettings, PrometheusError, Sample, canary_target
from mesh.canary import CanarySettings
from tests.infra.test_prometheus_source import SERVICE, TOKEN, answer_window, fake_cluster, kubeconfig

SETTINGS = AnalysisSettings(max_error_percent=1, max_p99_ms=500, min_requests=50, window_seconds=60)
TARGET = canary_target(CanarySettings())
HEALTHY = Sample(requests=1200, errors=2, p99_ms=40.0, window_seconds=60)


def props(weight: int, server: str = "http://127.0.0.1:9", **settings: Any) -> dict[str, Any]:
    """The gate's inputs as the provider receives them: plain values, the kubeconfig's secret unwrapped."""
    args = CanaryGateArgs(weight=weight, settings=AnalysisSettings(**{**SETTINGS.__dict__, **settings}),
                          target=TARGET, virtual_service="myapp-vs", service=SERVICE, kubeconfig="")
    return {**gate_props(args), "kubeconfig": kubeconfig(server, {"token": TOKEN}), "__provider": "serialized"}


@dataclass
class FakeSource:
    """A metric source that returns one sample (or raises), and records each window it was asked for."""

    sample_: Sample | None = HEALTHY
    error: Exception | None = None
    windows: list[float] = field(default_factory=list)
    built: int = 0

    def factory(self, inputs: GateInputs) -> FakeSource:
        self.built += 1
        return self

    def sample(self, window_seconds: float) -> Sample:
        self.windows.append(window_seconds)
        if self.error is not None:
            raise self.error
        assert self.sample_ is not None
        return self.sample_


def provider(source: FakeSource, live: int | None = None) -> CanaryGateProvider:
    """The gate with `source` for metrics; `live` is what the live VirtualService routes (None: never read)."""
    def routed(inputs: GateInputs) -> int:
        assert live is not None, "the live VirtualService was read"
        return live

    return CanaryGateProvider(source=source.factory, routed=routed)


def update(source: FakeSource, previous: int, new: int, **settings: Any) -> dict[str, Any]:
    """`update` with the outputs of a gate that approved `previous` (what the engine passes as olds)."""
    olds = {"weight": previous, "decision": "earlier", "__provider": "serialized"}
    result = provider(source).update("canary/myapp-v2", olds, props(new, **settings))
    assert result.outs is not None
    return result.outs


# --- Raising: judged -------------------------------------------------------------------------------------------------

def test_raising_with_a_healthy_v2_passes_and_records_the_weight_and_why() -> None:
    source = FakeSource()
    outs = update(source, 10, 50)
    assert outs == {"weight": 50, "decision": "canaryWeight 10 -> 50: v2 error rate 0.2% <= 1%, p99 40 ms <= 500 ms "
                                              "over 1200 requests"}
    assert source.windows == [60]  # canaryAnalysisSeconds


def test_raising_with_an_unhealthy_v2_fails_naming_the_metric_its_value_and_the_ceiling() -> None:
    source = FakeSource(Sample(requests=1000, errors=314, p99_ms=12.0, window_seconds=60))
    with pytest.raises(GateFailure) as failed:
        update(source, 10, 50)
    assert str(failed.value) == ("canaryWeight 10 -> 50 refused: v2 error rate 31.4% > 1% (canaryMaxErrorPercent); "
                                 "the VirtualService keeps canaryWeight 10 (lowering canaryWeight is never blocked)")


def test_a_slow_v2_fails_naming_p99_and_its_ceiling() -> None:
    source = FakeSource(Sample(requests=1000, errors=0, p99_ms=812.5, window_seconds=60))
    with pytest.raises(GateFailure, match=r"refused: v2 p99 latency 812.5 ms > 250 ms \(canaryMaxP99Ms\);"):
        update(source, 50, 100, max_p99_ms=250)


def test_too_few_v2_requests_refuse_a_raise_above_zero_naming_the_floor() -> None:
    source = FakeSource(Sample(requests=12, errors=0, p99_ms=5.0, window_seconds=60))
    with pytest.raises(GateFailure, match=r"10 -> 50 refused: v2 requests 12 < 50 \(not enough data\) "
                                          r"\(canaryMinRequests\)"):
        update(source, 10, 50)


def test_the_first_step_from_zero_passes_without_data_but_not_with_failing_testers() -> None:
    # At 0 only header-routed testers reach v2: no data is a first exposure, their failures still count.
    outs = update(FakeSource(Sample(requests=3, errors=0, p99_ms=5.0, window_seconds=60)), 0, 10)
    assert outs["decision"] == "canaryWeight 0 -> 10: first exposure, v2 had no weighted traffic to judge"
    with pytest.raises(GateFailure, match=r"0 -> 10 refused: v2 error rate 40% > 1%"):
        update(FakeSource(Sample(requests=50, errors=20, p99_ms=5.0, window_seconds=60)), 0, 10)


def test_an_unreachable_prometheus_refuses_the_raise_with_a_clear_error_never_a_pass() -> None:
    source = FakeSource(error=PrometheusError("GET https://eks.test/api/v1/...: [Errno 111] Connection refused"))
    with pytest.raises(GateFailure, match=r"^canaryWeight 0 -> 10 refused: v2 could not be judged over 60 s "
                                          r"\(canaryAnalysisSeconds\) from Prometheus monitoring/prometheus-server: "
                                          r"GET .*Connection refused$"):
        update(source, 0, 10)


def test_create_on_a_new_stack_judges_a_raise_from_zero() -> None:
    source = FakeSource(Sample(requests=1000, errors=500, p99_ms=5.0, window_seconds=60))
    with pytest.raises(GateFailure, match=r"canaryWeight 0 -> 50 refused: v2 error rate 50%"):
        provider(source, live=0).create(props(50))
    created = provider(FakeSource(), live=0).create(props(50))
    assert created.id == "canary/myapp-v2"
    assert created.outs == {"weight": 50, "decision": "canaryWeight 0 -> 50: v2 error rate 0.2% <= 1%, p99 40 ms <= "
                                                      "500 ms over 1200 requests"}


def test_turning_analysis_on_with_a_raise_judges_it_from_the_weight_the_mesh_routes() -> None:
    # Prometheus was installed in this very update: no history, so a raise above the live 50 is not enough data.
    source = FakeSource(Sample(requests=0, errors=0, p99_ms=None, window_seconds=60))
    with pytest.raises(GateFailure, match=r"canaryWeight 50 -> 100 refused: v2 requests 0 < 50"):
        provider(source, live=50).create(props(100))
    quiet = FakeSource(error=AssertionError("queried"))
    assert provider(quiet, live=50).create(props(50)).outs["weight"] == 50  # analysis on, weight kept: no query
    assert provider(quiet, live=50).create(props(10)).outs["weight"] == 10  # ... or lowered
    assert quiet.built == 0


# --- Lowering or keeping: never blocked, never queried -------------------------------------------------------------

@pytest.mark.parametrize(("previous", "new"), [(50, 10), (10, 0), (100, 0), (50, 50)])
def test_lowering_or_keeping_the_weight_never_queries_and_always_passes(previous: int, new: int) -> None:
    source = FakeSource(error=AssertionError("queried"))
    outs = update(source, previous, new)
    assert outs["weight"] == new
    assert (source.built, source.windows) == (0, [])


def test_creating_the_gate_at_weight_zero_queries_nothing() -> None:
    source = FakeSource(error=AssertionError("queried"))
    created = provider(source, live=None).create(props(0))  # nor is the live VirtualService read
    assert created.outs == {"weight": 0, "decision": "canaryWeight 0 -> 0: no change is never blocked"}
    assert source.built == 0


# --- diff and check run on every preview: they compare, never query ----------------------------------------------

def test_diff_reports_a_change_only_when_the_weight_moves() -> None:
    gate = provider(FakeSource(error=AssertionError("queried")))
    olds = {"weight": 10.0, "decision": "x"}  # protobuf numbers arrive as floats
    assert gate.diff("id", olds, {**props(50), "weight": 50.0}).changes is True
    assert gate.diff("id", olds, {**props(10), "weight": 10.0}).changes is False
    assert gate.diff("id", olds, {**props(10, max_error_percent=5), "weight": 10.0}).changes is False


def test_the_outputs_never_hold_the_kubeconfig() -> None:
    outs = update(FakeSource(), 10, 50)
    assert "kubeconfig" not in outs and TOKEN not in repr(outs)


def test_engine_floats_parse_as_integers() -> None:
    parsed = GateInputs.parse({**props(50), "weight": 50.0, "minRequests": 50.0, "windowSeconds": 60.0})
    assert (parsed.weight, parsed.settings, parsed.target) == (50, SETTINGS, TARGET)


@pytest.mark.parametrize(("change", "message"), [
    ({"weight": 101}, "weight: canaryWeight must be between 0 and 100, got 101"),
    ({"weight": 12.5}, "weight: an integer is required, got 12.5"),
    ({"kubeconfig": ""}, "kubeconfig: a non-empty string is required, got ''"),
    ({"maxErrorPercent": "1"}, "maxErrorPercent: a number is required, got '1'"),
])
def test_check_refuses_unusable_inputs_naming_the_property(change: dict[str, Any], message: str) -> None:
    bad = {**props(10), **change}
    result = provider(FakeSource()).check({}, bad)
    assert [f"{f.property}: {f.reason}" for f in result.failures] == [message]
    with pytest.raises(GateInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        GateInputs.parse(bad)


def test_settings_out_of_range_name_the_stack_config_key() -> None:
    with pytest.raises(GateInputError, match=r"^canaryMinRequests: "):
        GateInputs.parse({**props(10), "minRequests": 0})


def test_values_unknown_at_preview_are_not_judged() -> None:
    from pulumi.runtime.rpc import UNKNOWN

    assert list(input_failures({**props(10), "kubeconfig": UNKNOWN, "weight": UNKNOWN})) == []


# --- The real path: the kubeconfig, the service proxy, Prometheus (fakes on loopback) -------------------------------

def test_through_the_service_proxy_a_healthy_v2_passes_and_a_failing_one_is_refused() -> None:
    gate = CanaryGateProvider()  # the default source: infra.prometheus with the kubeconfig in the inputs
    olds = {"weight": 10, "decision": "earlier"}
    with fake_cluster() as cluster:
        answer_window(cluster, 60, "1200.4", "1", "25")
        assert gate.update("id", olds, props(50, cluster.url)).outs == {
            "weight": 50, "decision": "canaryWeight 10 -> 50: v2 error rate 0.1% <= 1%, p99 25 ms <= 500 ms over "
                                      "1200 requests"}
        answer_window(cluster, 60, "1000", "314", "25")
        with pytest.raises(GateFailure, match=r"refused: v2 error rate 31.4% > 1% \(canaryMaxErrorPercent\)"):
            gate.update("id", olds, props(50, cluster.url))
        asked = len(cluster.seen)
        gate.update("id", {"weight": 50}, props(0, cluster.url))  # the rollback
        assert len(cluster.seen) == asked, "a rollback queried the cluster"
    assert {path for path, _, _ in cluster.seen} == {f"{SERVICE.proxy_path()}/api/v1/query"}
    assert {auth for _, _, auth in cluster.seen} == {f"Bearer {TOKEN}"}


def test_through_the_service_proxy_an_unreachable_api_server_is_a_clear_error() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        server = f"http://127.0.0.1:{closed.getsockname()[1]}"  # bound, never listening: connections are refused
        with pytest.raises(GateFailure, match=r"10 -> 50 refused: v2 could not be judged .* Connection refused"):
            CanaryGateProvider().update("id", {"weight": 10}, props(50, server))


def test_through_the_api_create_reads_the_live_virtual_services_weight() -> None:
    from mesh.canary import virtual_service

    path = "/apis/networking.istio.io/v1/namespaces/canary/virtualservices/myapp-vs"
    with fake_cluster() as cluster:
        answer_window(cluster, 60, "7", "0", "25")  # Prometheus just installed: hardly any v2 requests
        assert CanaryGateProvider().create(props(50, cluster.url)).outs["weight"] == 50  # no VirtualService yet
        cluster.objects[path] = virtual_service(CanarySettings(canary_weight=10))
        with pytest.raises(GateFailure, match=r"canaryWeight 10 -> 50 refused: v2 requests 7 < 50"):
            CanaryGateProvider().create(props(50, cluster.url))
        assert CanaryGateProvider().create(props(10, cluster.url)).outs["weight"] == 10
    assert (path, "", f"Bearer {TOKEN}") in cluster.seen


def test_through_the_api_an_unreadable_virtual_service_refuses_creation_naming_it() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        server = f"http://127.0.0.1:{closed.getsockname()[1]}"
        with pytest.raises(GateFailure, match=r"^canaryWeight 50 refused: the weight in force could not be read from "
                                              r"VirtualService canary/myapp-vs: GET .*Connection refused"):
            CanaryGateProvider().create(props(50, server))


def test_through_the_service_proxy_a_missing_prometheus_is_a_clear_error() -> None:
    with fake_cluster() as cluster:
        wrong = {**props(50, cluster.url), "prometheusNamespace": "istio-system"}
        with pytest.raises(GateFailure, match=r"from Prometheus istio-system/prometheus-server: .*HTTP 404"):
            CanaryGateProvider().update("id", {"weight": 10}, wrong)


def test_the_service_the_gate_queries_is_the_one_the_program_installs() -> None:
    assert PrometheusService() == SERVICE

"""The twin takes the graph of a stack with `canaryAnalysis` on: Prometheus and the canary gate are placed as
cloud-only (named, with the reason), nothing is left unknown, and the wiring checks still pass."""

from __future__ import annotations

from infra.config import stack_config_values
from infra.gate import GATE_TYPE
from local.registry import check_wiring, plan
from sim.capture import capture
from tests.infra.conftest import TEST_SECRETS, run_main


def test_the_twin_places_prometheus_and_the_gate_as_cloud_only_and_nothing_as_unknown() -> None:
    graph = capture(run_main, stack_config_values("dev", {"canaryAnalysis": True}, secrets=TEST_SECRETS))
    placements = {p.name: p for p in plan(graph)}
    assert [p.name for p in placements.values() if p.action == "unknown"] == []
    gate, prometheus = placements["canary-gate"], placements["platform-monitoring-prometheus"]
    assert (gate.type, gate.action) == (GATE_TYPE, "cloud-only")
    assert "python -m local rollout" in gate.detail
    assert prometheus.action == "cloud-only" and "Prometheus" in prometheus.detail
    assert check_wiring(graph) == []

"""infra.rollout: the Automation-API applier against a fake stack (records set_config/up; no CLI here), the walk
through it with a fake Prometheus, and the CLI's wiring."""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto
from pulumi.automation._cmd import CommandResult

from infra.config import PROJECT_DIR
from infra.gate import GateFailure, GateInputs, enforce
from infra.rollout import AutomationApplier, analysis_settings, main
from mesh.analysis import AnalysisSettings, Sample
from mesh.rollout import EXIT_COMPLETE, EXIT_HELD, EXIT_ROLLED_BACK, ApplyError, ApplyHeld, rollout
from tests.infra.test_canary_gate import FakeSource, props
from tests.infra.test_prometheus_source import SERVICE, TOKEN, FakeCluster, answer_window, fake_cluster
from tests.mesh.test_rollout_walk import FakeClock


def kubeconfig(server: str) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Config", "current-context": "dev",
                       "clusters": [{"name": "dev", "cluster": {"server": server}}],
                       "contexts": [{"name": "dev", "context": {"cluster": "dev", "user": "dev"}}],
                       "users": [{"name": "dev", "user": {"token": TOKEN}}]})


@dataclass
class FakeStack:
    """Records calls like a recording mock; `up` "deploys" the config into the outputs, or fails like the gate."""

    config: dict[str, auto.ConfigValue] = field(default_factory=dict)
    deployed: dict[str, auto.OutputValue] = field(default_factory=dict)
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    refuse: Callable[[int], str | None] = lambda weight: None
    server: str = "http://127.0.0.1:9"

    def set_config(self, key: str, value: auto.ConfigValue, *, path: bool = False) -> None:
        self.calls.append(("set_config", key, value.value, value.secret, path))
        self.config[key] = value

    def get_config(self, key: str, *, path: bool = False) -> auto.ConfigValue:
        if key not in self.config:
            raise auto.CommandError(CommandResult("", f"error: configuration key '{key}' not found", 255))
        return self.config[key]

    def up(self, *, on_output: Callable[[str], Any] | None = None) -> object:
        weight = int(self.config["canaryWeight"].value)
        self.calls.append(("up", weight, on_output is not None))
        if on_output is not None:
            on_output(f"Updating (dev): canaryWeight {weight}")
        reason = self.refuse(weight)
        if reason is not None:
            raise auto.CommandError(CommandResult("Updating (dev):", f"error: {reason}", 255))
        self.deployed = {"canaryWeight": auto.OutputValue(weight, False),
                         "kubeconfig": auto.OutputValue(kubeconfig(self.server), True),
                         "canaryNamespace": auto.OutputValue("canary", False)}
        return object()

    def outputs(self) -> dict[str, auto.OutputValue]:
        return dict(self.deployed)


def test_apply_sets_the_weight_as_plain_text_then_runs_up_streaming_its_output() -> None:
    stack, lines = FakeStack(), list[str]()
    AutomationApplier(stack, on_output=lines.append).apply(50)
    assert stack.calls == [("set_config", "canaryWeight", "50", False, False), ("up", 50, True)]
    assert lines == ["Updating (dev): canaryWeight 50"]


def test_a_refused_update_is_an_apply_error_carrying_the_gate_message() -> None:
    stack = FakeStack(refuse=lambda w: "canaryWeight 10 -> 50 refused: v2 error rate 31.4% > 1%" if w == 50 else None)
    applier = AutomationApplier(stack, on_output=lambda _: None)
    applier.apply(10)
    with pytest.raises(ApplyError, match=r"canaryWeight 50 failed: error: canaryWeight 10 -> 50 refused: v2 error rate "
                                         r"31.4% > 1%$"):
        applier.apply(50)
    assert applier.current_weight() == 10  # the failed update changed nothing that is deployed


def test_current_weight_is_the_deployed_one_then_the_config_then_the_declared_default() -> None:
    stack = FakeStack()
    applier = AutomationApplier(stack, on_output=lambda _: None)
    assert applier.current_weight() == 0  # never deployed, not configured: Pulumi.yaml's default
    stack.config["canaryWeight"] = auto.ConfigValue("10")
    assert applier.current_weight() == 10
    applier.apply(50)
    stack.config["canaryWeight"] = auto.ConfigValue("70")  # edited but not deployed yet
    assert applier.current_weight() == 50


def test_metrics_query_prometheus_with_the_stacks_exported_kubeconfig() -> None:
    with fake_cluster() as cluster:
        stack = FakeStack(server=cluster.url)
        applier = AutomationApplier(stack, prometheus=SERVICE, on_output=lambda _: None)
        applier.apply(10)
        answer_window(cluster, 60, "400", "2", "11.5")
        assert applier.metrics().sample(60) == Sample(requests=400, errors=2, p99_ms=11.5, window_seconds=60)
    assert {auth for _, _, auth in cluster.seen} == {f"Bearer {TOKEN}"}
    assert 'destination_workload_namespace="canary"' in cluster.seen[0][1]


def walk(cluster: FakeCluster, stack: FakeStack, settings: AnalysisSettings) -> tuple[int, list[dict[str, Any]]]:
    lines: list[str] = []
    applier = AutomationApplier(stack, prometheus=SERVICE, on_output=lambda _: None)
    result = rollout((10, 50, 100), applier, settings, FakeClock(), emit=lines.append)
    return result.exit_code, [json.loads(line) for line in lines]


def test_walk_through_automation_reaches_100_with_one_up_per_step() -> None:
    settings = analysis_settings("dev")
    with fake_cluster() as cluster:
        answer_window(cluster, settings.window_seconds, "1200", "1", "25")
        stack = FakeStack(server=cluster.url)
        code, lines = walk(cluster, stack, settings)
    assert code == EXIT_COMPLETE
    assert [c for c in stack.calls if c[0] == "up"] == [("up", 10, True), ("up", 50, True), ("up", 100, True)]
    assert [d["action"] for d in lines] == ["promote", "promote", "complete"]


def test_walk_through_automation_on_a_failing_v2_runs_a_second_up_with_weight_0() -> None:
    settings = analysis_settings("dev")
    with fake_cluster() as cluster:
        answer_window(cluster, settings.window_seconds, "1000", "314", "8")
        stack = FakeStack(server=cluster.url)
        code, lines = walk(cluster, stack, settings)
    assert code == EXIT_ROLLED_BACK
    assert [c for c in stack.calls if c[0] == "up"] == [("up", 10, True), ("up", 0, True)]
    assert stack.config["canaryWeight"].value == "0"
    assert lines[-1]["reason"] == "v2 error rate 31.4% > 1%"


def gate_refusal(previous: int, weight: int, sample: Sample) -> str:
    """The message the gate inside `pulumi up` fails the update with, from the gate's own code."""
    with pytest.raises(GateFailure) as refused:
        enforce(previous, GateInputs.parse(props(weight)), FakeSource(sample).factory)
    return str(refused.value)


def test_a_gate_refusal_for_want_of_data_is_a_hold_and_one_for_a_failing_v2_is_not() -> None:
    few = gate_refusal(10, 50, Sample(requests=3, errors=0, p99_ms=5.0, window_seconds=60))
    failing = gate_refusal(10, 50, Sample(requests=1000, errors=300, p99_ms=5.0, window_seconds=60))
    applier = AutomationApplier(FakeStack(refuse=lambda w: few if w == 50 else None), on_output=lambda _: None)
    with pytest.raises(ApplyHeld, match=r"v2 requests 3 < \d+ \(not enough data\)"):
        applier.apply(50)
    applier = AutomationApplier(FakeStack(refuse=lambda w: failing if w == 50 else None), on_output=lambda _: None)
    with pytest.raises(ApplyError) as failed:
        applier.apply(50)
    assert type(failed.value) is ApplyError and "error rate 30%" in str(failed.value)


def test_walk_through_automation_held_by_the_gate_writes_the_weight_in_force_back_and_exits_3() -> None:
    settings = analysis_settings("dev")
    few = gate_refusal(10, 50, Sample(requests=3, errors=0, p99_ms=5.0, window_seconds=60))
    with fake_cluster() as cluster:
        answer_window(cluster, settings.window_seconds, "1200", "1", "25")
        stack = FakeStack(server=cluster.url, refuse=lambda w: few if w == 50 else None)
        code, lines = walk(cluster, stack, settings)
    assert code == EXIT_HELD
    assert [c for c in stack.calls if c[0] == "up"] == [("up", 10, True), ("up", 50, True), ("up", 10, True)]
    assert stack.config["canaryWeight"].value == "10"  # the config says what the mesh routes
    assert [d["action"] for d in lines] == ["promote", "hold"]


def test_cli_selects_the_stack_in_the_project_folder_and_exits_with_the_walks_code(
        capsys: pytest.CaptureFixture[str]) -> None:
    selected: list[dict[str, Any]] = []
    with fake_cluster() as cluster:
        answer_window(cluster, analysis_settings("dev").window_seconds, "1000", "500", "8")
        stack = FakeStack(server=cluster.url)

        def select(**kwargs: Any) -> FakeStack:
            selected.append(kwargs)
            return stack

        code = main(["--stack", "dev", "--steps", "25,100", "--prometheus-namespace", SERVICE.namespace,
                     "--prometheus-service", SERVICE.name, "--prometheus-port", SERVICE.port],
                    select=select, clock=FakeClock())
    out, err = capsys.readouterr()
    assert selected == [{"stack_name": "dev", "work_dir": str(PROJECT_DIR)}]
    assert code == EXIT_ROLLED_BACK
    assert [json.loads(line)["action"] for line in out.splitlines()] == ["rollback"]
    assert err.strip().endswith("rolled back to 0: v2 error rate 50% > 1%")


def test_cli_refuses_bad_steps_before_touching_the_stack(capsys: pytest.CaptureFixture[str]) -> None:
    def select(**kwargs: Any) -> FakeStack:
        raise AssertionError("no stack may be selected")

    assert main(["--stack", "dev", "--steps", "50,10"], select=select) == 2
    assert "--steps: steps must increase" in capsys.readouterr().err


def test_analysis_settings_come_from_the_stack_file_over_the_declared_defaults(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text((PROJECT_DIR / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.dev.yaml").write_text('config:\n  serverless-mesh:canaryMaxErrorPercent: "2.5"\n'
                                              '  serverless-mesh:canaryAnalysisSeconds: "30"\n')
    settings = analysis_settings("dev", tmp_path)
    assert (settings.max_error_percent, settings.window_seconds) == (2.5, 30)
    (tmp_path / "Pulumi.dev.yaml").write_text('config:\n  serverless-mesh:canaryMinRequests: "0"\n')
    with pytest.raises(ValueError, match="serverless-mesh:canaryMinRequests must be an integer from 1 to 1000000"):
        analysis_settings("dev", tmp_path)


def test_the_program_never_imports_the_rollout_driver() -> None:
    """It drives `pulumi up`; inside the program it would import the Automation API into every update."""
    for path in [PROJECT_DIR / "__main__.py", *sorted((PROJECT_DIR / "infra").glob("*.py"))]:
        if path.name == "rollout.py":
            continue
        tree = ast.parse(path.read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert "infra.rollout" not in imported, path

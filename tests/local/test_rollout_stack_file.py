"""local.rollout: the stack-file writer (as `pulumi config set` writes, everything else kept), the twin applier
waiting for its readiness probe, and the walk through it (scripted metrics; the twin integration comes later)."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest
import yaml

from infra.config import PROJECT_DIR, ConfigError, parse_stack_config, stack_config_values
from local.rollout import (
    StackFileApplier,
    mesh_weight_probe,
    set_stack_config,
    stack_weight,
)
from mesh.analysis import AnalysisSettings, Sample
from mesh.rollout import EXIT_COMPLETE, EXIT_ROLLED_BACK, ApplyError, rollout
from tests.mesh.test_rollout_walk import FakeClock

DEV = (PROJECT_DIR / "Pulumi.dev.yaml").read_text()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(PROJECT_DIR / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "Pulumi.dev.yaml").write_text(DEV)
    return tmp_path


def test_setting_the_weight_changes_only_its_line_to_the_clis_quoted_string(project: Path) -> None:
    path = project / "Pulumi.dev.yaml"
    set_stack_config(path, "canaryWeight", "50")
    before, after = DEV.splitlines(keepends=True), path.read_text().splitlines(keepends=True)
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert changed == [("  serverless-mesh:canaryWeight: 10\n", '  serverless-mesh:canaryWeight: "50"\n')]
    assert yaml.safe_load(path.read_text())["config"]["serverless-mesh:canaryWeight"] == "50"


def test_the_written_stack_file_loads_like_the_cli_would_hand_it_to_the_program(project: Path) -> None:
    set_stack_config(project / "Pulumi.dev.yaml", "canaryWeight", "100")
    cfg = parse_stack_config(stack_config_values("dev", project_dir=project).project_raw())
    assert cfg.canary_weight == 100
    assert stack_weight(project / "Pulumi.dev.yaml", project) == 100


def test_round_trip_through_every_step_and_back_to_0_keeps_the_rest_of_the_file(project: Path) -> None:
    path = project / "Pulumi.dev.yaml"
    for weight in (10, 50, 100, 0):
        set_stack_config(path, "canaryWeight", str(weight))
        assert stack_weight(path, project) == weight
    assert path.read_text() == DEV.replace("canaryWeight: 10\n", 'canaryWeight: "0"\n')


def test_a_trailing_comment_and_crlf_line_endings_stay(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.s.yaml"
    path.write_text("config:\r\n    serverless-mesh:canaryWeight: 10  # ten percent\r\n    aws:region: x\r\n")
    set_stack_config(path, "canaryWeight", "50")
    assert path.read_bytes() == (b'config:\r\n    serverless-mesh:canaryWeight: "50"  # ten percent\r\n'
                                 b"    aws:region: x\r\n")


def test_a_missing_key_is_added_to_the_config_block_at_its_indent(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.s.yaml"
    path.write_text("# header\nconfig:\n    aws:region: eu-west-1\n\nencryptionsalt: v1:abc\n")
    set_stack_config(path, "canaryWeight", "10")
    assert path.read_text() == ('# header\nconfig:\n    aws:region: eu-west-1\n    serverless-mesh:canaryWeight: "10"\n'
                                "\nencryptionsalt: v1:abc\n")


def test_a_file_without_a_config_block_gets_one(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.s.yaml"
    path.write_text("encryptionsalt: v1:abc")
    set_stack_config(path, "canaryWeight", "10")
    assert yaml.safe_load(path.read_text()) == {"encryptionsalt": "v1:abc",
                                                "config": {"serverless-mesh:canaryWeight": "10"}}


def test_a_secret_value_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.s.yaml"
    text = "config:\n  serverless-mesh:canaryWeight:\n    secure: AAABAJk=\n"
    path.write_text(text)
    with pytest.raises(ConfigError, match="secret or structured"):
        set_stack_config(path, "canaryWeight", "10")
    assert path.read_text() == text


def test_without_the_key_the_weight_is_pulumi_yamls_default(project: Path) -> None:
    path = project / "Pulumi.dev.yaml"
    path.write_text("config:\n  aws:region: eu-west-1\n")
    assert stack_weight(path, project) == 0


def write_mesh_state(state_dir: Path, weight: int) -> None:
    """What local.mesh writes once Envoy serves new routes (the fields the probe reads)."""
    state = {"adminUrl": "http://127.0.0.1:1", "canary": {"canarySubset": "v2", "subsets": [
        {"subset": "v1", "weight": 100 - weight, "cluster": "outbound|80|v1|h", "versions": ["1.0.0"]},
        {"subset": "v2", "weight": weight, "cluster": "outbound|80|v2|h", "versions": ["2.0.0"]}]}}
    (state_dir / "mesh.json").write_text(json.dumps(state))


class FakeTwin:
    """Watches the stack file like the twin and, a little later, reports the new weight in its mesh state."""

    def __init__(self, project: Path, state_dir: Path) -> None:
        self.project, self.state_dir = project, state_dir
        self.stop = threading.Event()
        self.seen: list[int] = []
        self.initial = stack_weight(project / "Pulumi.dev.yaml", project)
        write_mesh_state(state_dir, self.initial)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        applied = self.initial
        while not self.stop.wait(0.02):
            weight = stack_weight(self.project / "Pulumi.dev.yaml", self.project)
            if weight != applied:
                self.stop.wait(0.05)
                write_mesh_state(self.state_dir, weight)
                self.seen.append(weight)
                applied = weight

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


def no_metrics() -> StaticSource:
    raise AssertionError("apply must not read metrics")


def test_apply_returns_only_once_the_twin_serves_the_weight(project: Path, tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    twin = FakeTwin(project, state_dir)
    try:
        applier = StackFileApplier(project / "Pulumi.dev.yaml", ready=mesh_weight_probe(state_dir),
                                   metrics=no_metrics, project_dir=project, poll=0.01)
        applier.apply(50)
        assert mesh_weight_probe(state_dir)(50)
        assert applier.current_weight() == 50
    finally:
        twin.close()


def test_apply_fails_when_the_twin_never_takes_the_weight(project: Path, tmp_path: Path) -> None:
    write_mesh_state(tmp_path, 10)
    clock = FakeClock()
    applier = StackFileApplier(project / "Pulumi.dev.yaml", ready=mesh_weight_probe(tmp_path),
                               metrics=no_metrics, project_dir=project, timeout=5, clock=clock)
    with pytest.raises(ApplyError, match="did not apply canaryWeight 50 within 5 s"):
        applier.apply(50)
    assert clock.now >= 5


class StaticSource:
    def __init__(self, sample: Sample) -> None:
        self._sample = sample

    def sample(self, window_seconds: float) -> Sample:
        return self._sample


@pytest.mark.parametrize(("errors", "code", "final", "seen"),
                         [(0, EXIT_COMPLETE, 100, [10, 50, 100]), (60, EXIT_ROLLED_BACK, 0, [10, 0])])
def test_walk_through_the_stack_file(project: Path, tmp_path: Path, errors: int, code: int, final: int,
                                     seen: list[int]) -> None:
    path = project / "Pulumi.dev.yaml"
    set_stack_config(path, "canaryWeight", "0")
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    twin = FakeTwin(project, state_dir)
    try:
        applier = StackFileApplier(path, ready=mesh_weight_probe(state_dir), project_dir=project, poll=0.01,
                                   metrics=lambda: StaticSource(Sample(requests=200, errors=errors, p99_ms=5.0,
                                                                       window_seconds=1)))
        settings = AnalysisSettings(max_error_percent=1, max_p99_ms=500, min_requests=50, window_seconds=1)
        result = rollout((10, 50, 100), applier, settings, FakeClock(), emit=lambda _: None)
    finally:
        twin.close()
    assert (result.exit_code, stack_weight(path, project)) == (code, final)
    assert twin.seen == seen
    assert f'serverless-mesh:canaryWeight: "{final}"' in path.read_text()

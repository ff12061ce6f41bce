"""local.envoy_metrics on real Envoy in front of real myapp processes: the canary subset's window counts match
what the client saw, the p99 comes from Envoy's buckets, and the whole walk (mesh.rollout) runs on it under a
steady stream of requests: a healthy v2 reaches 100 with no failed request, a v2 failing 30% is stopped at the
first step and rolled back."""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from infra.config import PROJECT_DIR
from local.envoy import EnvoyProcess
from local.envoy_metrics import EnvoySource
from local.rollout import add_arguments, cmd_rollout, set_stack_config, stack_weight
from mesh import canary
from mesh.analysis import AnalysisSettings, Health, verdict
from mesh.canary import CanarySettings
from mesh.envoy import ListenerSpec, cluster_name
from mesh.rollout import EXIT_COMPLETE, EXIT_ROLLED_BACK, rollout
from tests.mesh.conftest import myapps
from tests.mesh.test_envoy_live import fetch_versions
from tests.support.servers import free_port

pytestmark = pytest.mark.slow

SETTINGS = CanarySettings()
V2_CLUSTER = cluster_name(SETTINGS.host, "v2", SETTINGS.service_port)


@dataclass(frozen=True)
class Canary:
    envoy: EnvoyProcess
    apps: dict[str, tuple[str, int]]

    @property
    def url(self) -> str:
        return self.envoy.url("canary")

    def route(self, weight: int, v2: str) -> None:
        """The twin's apply: the canary's specs at ``weight``, with ``v2`` (an app key) behind the v2 subset."""
        settings = CanarySettings(canary_weight=weight)
        self.envoy.apply([canary.virtual_service(settings)], [canary.destination_rule(settings)],
                         {(settings.host, "v1"): [self.apps["1.0.0"]], (settings.host, "v2"): [self.apps[v2]]})


@pytest.fixture(scope="module")
def live_canary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Canary]:
    root = tmp_path_factory.mktemp("canary-metrics")
    listener = ListenerSpec(name="canary", port=free_port(), gateway=SETTINGS.gateways[0],
                            virtual_services=("myapp-vs",), default_host=SETTINGS.host)
    with ExitStack() as stack:
        apps = stack.enter_context(myapps(root, {"1.0.0": {}, "2.0.0": {}, "2.0.0-bad": {"FAULT_PERCENT": "30"}}))
        envoy = stack.enter_context(EnvoyProcess(root / "envoy", [listener]))
        yield Canary(envoy, apps)


def test_window_counts_exactly_what_the_canary_served_since_the_baseline(live_canary: Canary) -> None:
    live_canary.route(50, "2.0.0-bad")
    fetch_versions(live_canary.url, 200)  # before the baseline: not in the window
    source = EnvoySource(live_canary.envoy.admin_url, V2_CLUSTER)
    counts = fetch_versions(live_canary.url, 1000)
    sample = source.sample(0)
    served = counts["2.0.0-bad"] + counts["500"]
    assert set(counts) == {"1.0.0", "2.0.0-bad", "500"}, counts
    assert sample.requests == served
    assert sample.errors == counts["500"]
    assert served * 30 // 100 <= sample.errors <= -(-served * 30 // 100)  # FAULT_PERCENT 30 of any run
    assert sample.p99_ms is not None and 0 < sample.p99_ms < 1000
    assert sample.window_seconds > 0
    judged = verdict(sample, replace(WALK, min_requests=100))
    assert (judged.health, judged.metric) == (Health.UNHEALTHY, "error_rate")
    assert judged.reason.startswith("v2 error rate ") and judged.reason.endswith("% > 1%")


def test_p99_of_the_window_is_within_the_windows_own_samples(live_canary: Canary) -> None:
    live_canary.route(100, "2.0.0")
    source = EnvoySource(live_canary.envoy.admin_url, V2_CLUSTER)
    counts = fetch_versions(live_canary.url, 500)
    sample = source.sample(0)
    assert counts == Counter({"2.0.0": 500})
    assert (sample.requests, sample.errors) == (500, 0)
    cumulative = live_canary.envoy.histograms()[f"cluster.{V2_CLUSTER}.upstream_rq_time"][100.0]
    assert sample.p99_ms is not None and 0 < sample.p99_ms <= cumulative * 1.1  # Envoy buckets: ~2 digits


@dataclass
class EnvoyApplier:
    """The twin's applier without the stack file: apply re-routes Envoy, metrics reads the v2 cluster."""

    canary: Canary
    v2: str
    weight: int = 0

    def current_weight(self) -> int:
        return self.weight

    def apply(self, weight: int) -> None:
        self.canary.route(weight, self.v2)
        self.weight = weight

    def metrics(self) -> EnvoySource:
        return EnvoySource(self.canary.envoy.admin_url, V2_CLUSTER)


@contextmanager
def steady_stream(url: str, threads: int = 3) -> Iterator[Counter[str]]:
    """Requests on keep-alive connections until the block ends; answers counted by version or status."""
    target, stop, lock = urlsplit(url), threading.Event(), threading.Lock()
    counts: Counter[str] = Counter()

    def stream() -> None:
        conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=10)
        while not stop.is_set():
            try:
                conn.request("GET", "/version")
                response = conn.getresponse()
                body = response.read()
                answer = json.loads(body)["version"] if response.status == 200 else str(response.status)
            except (OSError, http.client.HTTPException) as exc:
                answer = type(exc).__name__
                conn.close()
                conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=10)
            with lock:
                counts[answer] += 1
        conn.close()

    workers = [threading.Thread(target=stream) for _ in range(threads)]
    for worker in workers:
        worker.start()
    try:
        yield counts
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)


# Few requests suffice for a v2 failing 30% (or none); the suite shares two cores, so a 2 s window at 10% may
# see only a few dozen v2 requests.
WALK = AnalysisSettings(max_error_percent=1, max_p99_ms=500, min_requests=10, window_seconds=2)


def test_walk_on_real_envoy_takes_a_healthy_v2_to_100_without_a_failed_request(live_canary: Canary) -> None:
    live_canary.route(0, "2.0.0")
    lines: list[str] = []
    with steady_stream(live_canary.url) as counts:
        started = time.monotonic()
        result = rollout((10, 50, 100), EnvoyApplier(live_canary, "2.0.0"), WALK, emit=lines.append)
        took = time.monotonic() - started
    decisions = [json.loads(line) for line in lines]
    print(f"healthy walk: {took:.1f} s, {counts.total()} requests, applies "
          f"{[d['applySeconds'] for d in decisions]} s")
    assert result.exit_code == EXIT_COMPLETE, decisions
    assert [(d["step"], d["action"]) for d in decisions] == [(10, "promote"), (50, "promote"), (100, "complete")]
    assert set(counts) == {"1.0.0", "2.0.0"}, counts  # zero failed requests


def test_walk_on_real_envoy_stops_a_v2_failing_30_percent_at_the_first_step(live_canary: Canary) -> None:
    live_canary.route(0, "2.0.0-bad")
    lines: list[str] = []
    with steady_stream(live_canary.url) as counts:
        result = rollout((10, 50, 100), EnvoyApplier(live_canary, "2.0.0-bad"), WALK, emit=lines.append)
        after_rollback = counts.copy()
        time.sleep(0.5)
    decisions = [json.loads(line) for line in lines]
    failed = counts.total() - counts["1.0.0"] - counts["2.0.0-bad"]
    print(f"failing walk: {counts.total()} requests, {failed} failed ({100 * failed / counts.total():.2f}%), "
          f"rollback apply {decisions[-1]['applySeconds']} s")
    assert result.exit_code == EXIT_ROLLED_BACK, decisions
    assert result.final_weight == 0
    assert [(d["step"], d["action"], d["metric"]) for d in decisions] == [(10, "rollback", "error_rate")]
    assert 25 <= decisions[0]["value"] <= 35
    assert set(counts) <= {"1.0.0", "2.0.0-bad", "500"}, counts
    assert failed / counts.total() < 0.05
    assert counts["500"] == after_rollback["500"]  # nothing reached v2 once weight 0 was applied


def test_local_rollout_command_rolls_back_through_the_stack_file_on_real_envoy(
        live_canary: Canary, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m local rollout`'s body with a stand-in for the twin's config watcher: it re-routes real Envoy
    from the stack file and writes the mesh state the readiness probe and the Envoy source read."""
    shutil.copy(PROJECT_DIR / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copy(PROJECT_DIR / "Pulumi.dev.yaml", tmp_path / "Pulumi.dev.yaml")
    stack_file, state_dir = tmp_path / "Pulumi.dev.yaml", tmp_path / "state"
    state_dir.mkdir()
    set_stack_config(stack_file, "canaryWeight", "0")
    stop, applied = threading.Event(), []

    def sync() -> None:
        weight = stack_weight(stack_file, tmp_path)
        if applied and applied[-1] == weight:
            return
        live_canary.route(weight, "2.0.0-bad")
        (state_dir / "mesh.json").write_text(json.dumps({"adminUrl": live_canary.envoy.admin_url, "canary": {
            "canarySubset": "v2", "subsets": [
                {"subset": "v1", "weight": 100 - weight, "cluster": cluster_name(SETTINGS.host, "v1", 80)},
                {"subset": "v2", "weight": weight, "cluster": V2_CLUSTER}]}}))
        applied.append(weight)

    def watcher() -> None:
        while not stop.wait(0.05):
            sync()

    sync()  # the twin is up at 0 before the rollout starts
    thread = threading.Thread(target=watcher, daemon=True)
    thread.start()
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--stack", "dev", "--state-dir", str(state_dir), "--config-dir", str(tmp_path)])
    try:
        with steady_stream(live_canary.url) as counts:
            code = cmd_rollout(args, WALK)
    finally:
        stop.set()
        thread.join(timeout=10)
    out, err = capsys.readouterr()
    decisions = [json.loads(line) for line in out.splitlines()]
    assert code == EXIT_ROLLED_BACK, (out, err)
    assert applied == [0, 10, 0]
    assert 'serverless-mesh:canaryWeight: "0"' in stack_file.read_text()
    assert [(d["step"], d["action"]) for d in decisions] == [(10, "rollback")]
    assert "rolled back to 0: v2 error rate " in err
    failed = counts.total() - counts["1.0.0"] - counts["2.0.0-bad"]
    assert failed / counts.total() < 0.05, counts

"""The canary on the twin's real Envoy: the dev stack (`canaryWeight: 10`) from a copy of its stack file.

One twin, watching its own copy of `Pulumi.dev.yaml`, so the test can do what `pulumi config set canaryWeight 50`
does (edit the file) while requests keep flowing. The rollout's steps depend on each other's order (10 first, then
the live change, then the checks at 50), so they form one test whose helpers name each step.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from infra.config import PROJECT_DIR
from local.canary import binomial_interval
from tests.local.conftest import RunningTwin, start_twin

pytestmark = pytest.mark.slow

V1, V2 = "1.0.0", "2.0.0"


@dataclass
class MeshTwin:
    twin: RunningTwin
    stack_file: Path

    @property
    def mesh_url(self) -> str:
        return self.twin.endpoints["meshUrl"]

    def mesh_state(self) -> dict:
        return json.loads((self.twin.state_dir / "mesh.json").read_text())

    def canary_weight(self) -> int:
        subsets = self.mesh_state()["canary"]["subsets"]
        return int(next(s["weight"] for s in subsets if s["subset"] == "v2"))

    def canary(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "local", "canary", "--state-dir", str(self.twin.state_dir), *args],
                              cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120, check=False)


def _start_watching(state_dir: Path, config_dir: Path) -> RunningTwin:
    """`python -m local up` with the stack-file watcher on, reading the stack file from `config_dir`."""
    return start_twin(state_dir, extra=("--config-dir", str(config_dir)), watch=True)


@pytest.fixture(scope="module")
def mesh_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeshTwin]:
    root = tmp_path_factory.mktemp("twin-mesh")
    config_dir = root / "config"
    config_dir.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
        shutil.copy(PROJECT_DIR / name, config_dir / name)
    twin = _start_watching(root / "state", config_dir)
    try:
        yield MeshTwin(twin, config_dir / "Pulumi.dev.yaml")
    finally:
        twin.stop()


def _versions(url: str, n: int, *, headers: dict[str, str] | None = None, threads: int = 4) -> Counter[str]:
    """n GETs of /version over keep-alive sessions; answers counted by body version (failures as `HTTP <code>`)."""
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    per_thread = [n // threads + (1 if i < n % threads else 0) for i in range(threads)]

    def run(count: int) -> None:
        with requests.Session() as session:
            for _ in range(count):
                r = session.get(f"{url}/version", headers=headers, timeout=15)
                answer = r.json()["version"] if r.status_code == 200 else f"HTTP {r.status_code}"
                with lock:
                    counts[answer] += 1

    workers = [threading.Thread(target=run, args=(c,)) for c in per_thread]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return counts


def _assert_split(counts: Counter[str], weight: int) -> None:
    n = sum(counts.values())
    assert set(counts) <= {V1, V2}, f"unexpected answers: {counts}"
    lo, hi = binomial_interval(n, weight / 100)
    assert lo <= counts[V2] <= hi, f"v2 got {counts[V2]}/{n}, outside the 99.9% interval [{lo}, {hi}] for {weight}%"


# --- pure: the check `canary --verify` makes ----------------------------------------------------------------

def test_binomial_interval_brackets_the_expected_count_and_excludes_far_ones() -> None:
    lo, hi = binomial_interval(1000, 0.10)
    assert lo < 100 < hi
    assert lo > 60 and hi < 140  # ~ +-3.3 sigma for sigma ~ 9.5
    assert binomial_interval(500, 0.0) == (0, 0)
    assert binomial_interval(500, 1.0) == (500, 500)


# --- the seed's rollout on the twin, in order ------------------------------------------------------------------

def test_seed_rollout_on_envoy_splits_by_weight_and_moves_live_without_a_failed_request(mesh_twin: MeshTwin) -> None:
    """canaryWeight 10 from Pulumi.dev.yaml; then the stack file says 50 while requests flow."""
    _check_endpoints_on_loopback(mesh_twin)
    assert mesh_twin.canary_weight() == 10
    _check_seed_curl_loop(mesh_twin)
    _assert_split(_versions(mesh_twin.mesh_url, 1000), 10)
    assert _versions(mesh_twin.mesh_url, 40, headers={"x-canary": "always"}, threads=2) == Counter({V2: 40})
    _check_canary_stats(mesh_twin, weights={"v1": 90, "v2": 10})
    _change_weight_under_load(mesh_twin, 10, 50)
    done = mesh_twin.canary("--verify", "1000")
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^\s+\d+ 1\.0\.0$", done.stdout, re.M) and re.search(r"^\s+\d+ 2\.0\.0$", done.stdout, re.M)
    assert "weight 50" in done.stdout and "-> consistent" in done.stdout
    _check_stop_leaves_nothing(mesh_twin)


def _check_endpoints_on_loopback(mesh_twin: MeshTwin) -> None:
    endpoints = json.loads((mesh_twin.twin.state_dir / "endpoints.json").read_text())
    for key in ("meshUrl", "ingressUrl", "envoyAdminUrl"):
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", endpoints[key]), endpoints


def _check_seed_curl_loop(mesh_twin: MeshTwin) -> None:
    """The seed's loop, unchanged but for the URL: only the two versions answer."""
    if shutil.which("curl") is None:
        return  # the same requests are made with requests below
    script = 'for i in $(seq 1 100); do curl -s "$MESH_URL/version"; echo; done | sort | uniq -c'
    done = subprocess.run(["bash", "-c", script], env={**os.environ, "MESH_URL": mesh_twin.mesh_url},
                          capture_output=True, text=True, timeout=120, check=True)
    counts = {line.split(maxsplit=1)[1]: int(line.split()[0]) for line in done.stdout.strip().splitlines()}
    assert set(counts) <= {'{"version":"1.0.0"}', '{"version":"2.0.0"}'}, done.stdout
    assert sum(counts.values()) == 100


def _check_canary_stats(mesh_twin: MeshTwin, *, weights: dict[str, int]) -> None:
    """`python -m local canary` counts exactly the requests just sent, per version, with no errors."""
    def report() -> dict[str, dict]:
        done = mesh_twin.canary("--json")
        assert done.returncode == 0, done.stderr
        return {row["subset"]: row for row in json.loads(done.stdout)}

    before = report()
    sent = _versions(mesh_twin.mesh_url, 200) + _versions(mesh_twin.mesh_url, 20, headers={"x-canary": "always"})
    after = report()
    assert after["v1"]["versions"] == [V1] and after["v2"]["versions"] == [V2]
    assert {s: after[s]["weight"] for s in after} == weights
    delta = {s: after[s]["requests"] - before[s]["requests"] for s in ("v1", "v2")}
    assert delta == {"v1": sent[V1], "v2": sent[V2]}, (delta, sent)
    assert after["v1"]["errors"] == 0 and after["v2"]["errors"] == 0
    for subset in ("v1", "v2"):
        assert after[subset]["p50Ms"] is not None and after[subset]["p99Ms"] >= after[subset]["p50Ms"]


def _change_weight_under_load(mesh_twin: MeshTwin, old: int, new: int) -> None:
    """Edit the stack file (what `pulumi config set canaryWeight` does) while two clients keep requesting."""
    stop = threading.Event()
    answers: list[tuple[float, str]] = []
    lock = threading.Lock()

    def stream() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                try:
                    r = session.get(f"{mesh_twin.mesh_url}/version", timeout=15)
                    answer = r.json()["version"] if r.status_code == 200 else f"HTTP {r.status_code}"
                except requests.RequestException as exc:
                    answer = f"error {exc!r}"
                with lock:
                    answers.append((time.monotonic(), answer))

    streams = [threading.Thread(target=stream) for _ in range(2)]
    for t in streams:
        t.start()
    try:
        time.sleep(1.0)
        text = mesh_twin.stack_file.read_text()
        assert f"canaryWeight: {old}" in text
        mesh_twin.stack_file.write_text(text.replace(f"canaryWeight: {old}", f"canaryWeight: {new}"))
        deadline = time.monotonic() + 60
        while mesh_twin.canary_weight() != new and time.monotonic() < deadline:
            time.sleep(0.2)
        changed_at = time.monotonic()
        assert mesh_twin.canary_weight() == new, mesh_twin.twin.output()[-3000:]
        while sum(1 for t, _ in answers if t > changed_at) < 1000 and time.monotonic() < changed_at + 30:
            time.sleep(0.1)
    finally:
        stop.set()
        for t in streams:
            t.join()
    failed = [a for _, a in answers if a not in (V1, V2)]
    assert not failed, f"{len(failed)} of {len(answers)} requests failed across the change: {failed[:5]}"
    after = Counter(a for t, a in answers if t > changed_at)
    assert sum(after.values()) >= 1000
    _assert_split(after, new)


def _check_stop_leaves_nothing(mesh_twin: MeshTwin) -> None:
    """Ctrl-C stops Envoy, the service processes and PostgreSQL with everything else (psutil checks the children)."""
    import psutil

    names = set()
    for child in psutil.Process(mesh_twin.twin.proc.pid).children(recursive=True):
        try:
            names.add(" ".join(child.cmdline()))
        except psutil.NoSuchProcess:
            continue
    assert any("envoy" in n for n in names) and any("services.myapp" in n for n in names), names
    assert any("postgres" in n for n in names), names
    assert mesh_twin.twin.stop() == 0  # fails if any child survives


def test_canary_without_a_running_twin_exits_3(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "local", "canary", "--state-dir", str(tmp_path), "--verify", "10"],
                          cwd=PROJECT_DIR, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 3
    assert "not running" in done.stderr

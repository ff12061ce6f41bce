"""The canary rollout under a request stream, on the twin's real Envoy: failures, process changes and timings.

    .venv/bin/python bench/rollout_stream.py [--start 10] [--threads 2] [--settle 8] [--record bench/results]

Starts the dev stack's twin with its stack-file watcher on, reading a copy of `Pulumi.yaml` / `Pulumi.dev.yaml`
in a temporary folder (`--config-dir`), with `canaryWeight` set to `--start`. Two clients keep GETting
`/version` through the mesh listener while the copy is edited as `pulumi config set` would:

1. `canaryWeight: 100`
2. `retireStable: true` + `confirmStableDrained: true` (the v1 processes stop after the drain)
3. the rollback: `canaryWeight` back to `--start`, `retireStable` and `confirmStableDrained` removed (v1 starts,
   is ready, and only then gets traffic)

For each step it prints the requests answered and failed while the step was applied and settled, the time from
the file being saved to the new split in `mesh.json`, Envoy's route swap (`routes version N applied in X ms` in
the twin's console), the myapp processes before and after, and the load average. tests/local/test_rollout_twin.py
runs the same steps from 50 and asserts on them.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.local.conftest import RunningTwin, start_twin  # noqa: E402  (the twin as the tests start it)

V1, V2 = "1.0.0", "2.0.0"
PREFIX = "serverless-mesh:"
ROUTES_APPLIED = re.compile(r"routes version (\d+) applied in (\d+) ms")


@dataclass(frozen=True)
class Step:
    name: str
    config: dict[str, Any]
    """Stack config keys (without the project prefix) to set; None removes the key."""
    weight: int
    """v2's weight once the step is applied."""
    versions: frozenset[str]
    """The myapp versions with a running process once the step is applied."""


def rollout_steps(start: int) -> list[Step]:
    """100, then retire the stable version, then roll back to `start` with the stable version running again."""
    return [
        Step("canaryWeight 100", {"canaryWeight": 100}, 100, frozenset({V1, V2})),
        Step("retireStable", {"retireStable": True, "confirmStableDrained": True}, 100, frozenset({V2})),
        Step(f"rollback to {start}", {"canaryWeight": start, "retireStable": None, "confirmStableDrained": None},
             start, frozenset({V1, V2})),
    ]


@dataclass
class StepResult:
    step: Step
    answers: Counter[str]
    failures: list[str]
    split_seconds: float | None
    """File saved -> the new weight in mesh.json (None: the weight did not change)."""
    applied_seconds: float
    """File saved -> weight and processes both as the step wants."""
    route_swaps_ms: list[int]
    processes_before: dict[str, list[int]]
    processes_after: dict[str, list[int]]
    load: tuple[float, float, float] = field(default_factory=os.getloadavg)


class Stream:
    """Clients GETting /version over keep-alive sessions until stopped; every answer kept with its time."""

    def __init__(self, url: str, threads: int = 2) -> None:
        self.url = url
        self.answers: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> Stream:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                try:
                    r = session.get(f"{self.url}/version", timeout=15)
                    answer = r.json()["version"] if r.status_code == 200 else f"HTTP {r.status_code}"
                except (requests.RequestException, ValueError) as exc:
                    answer = f"error {exc!r}"
                with self._lock:
                    self.answers.append((time.monotonic(), answer))

    def since(self, moment: float) -> list[str]:
        with self._lock:
            return [a for t, a in self.answers if t >= moment]


def myapp_processes(twin: RunningTwin) -> dict[str, list[int]]:
    """Running myapp service processes under the twin, by the VERSION in their environment."""
    out: dict[str, list[int]] = {}
    for child in psutil.Process(twin.pid).children(recursive=True):
        try:
            if "services.myapp" in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                out.setdefault(child.environ().get("VERSION", "?"), []).append(child.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return {k: sorted(v) for k, v in sorted(out.items())}


def canary_weight(twin: RunningTwin) -> int:
    subsets = json.loads((twin.state_dir / "mesh.json").read_text())["canary"]["subsets"]
    return int(next(s["weight"] for s in subsets if s["subset"] == "v2"))


def edit_stack(stack_file: Path, changes: dict[str, Any]) -> None:
    """What `pulumi config set` / `config rm` do to the stack file (comments are not kept: it is a copy)."""
    doc = yaml.safe_load(stack_file.read_text())
    config = doc.setdefault("config", {})
    for key, value in changes.items():
        if value is None:
            config.pop(PREFIX + key, None)
        else:
            config[PREFIX + key] = value
    stack_file.write_text(yaml.safe_dump(doc, sort_keys=False))


def copy_config(config_dir: Path, start: int) -> Path:
    config_dir.mkdir(parents=True, exist_ok=True)
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
        shutil.copy(ROOT / name, config_dir / name)
    stack_file = config_dir / "Pulumi.dev.yaml"
    edit_stack(stack_file, {"canaryWeight": start})
    return stack_file


def start_watching(root: Path, start: int) -> tuple[RunningTwin, Path]:
    stack_file = copy_config(root / "config", start)
    twin = start_twin(root / "state", extra=("--config-dir", str(root / "config")), watch=True)
    return twin, stack_file


def apply_step(twin: RunningTwin, stack_file: Path, stream: Stream, step: Step, *, settle: float,
               timeout: float = 90) -> StepResult:
    """Save the change, wait for the split and the processes the step wants, keep streaming `settle` s more
    (past the services' drain, so the old processes stop under load), and count what the clients saw."""
    before = myapp_processes(twin)
    old_weight = canary_weight(twin)
    swaps_before = len(ROUTES_APPLIED.findall(twin.output()))
    saved = time.monotonic()
    edit_stack(stack_file, step.config)
    split_seconds: float | None = None
    deadline = saved + timeout
    while time.monotonic() < deadline:
        weight = canary_weight(twin)
        if split_seconds is None and weight == step.weight and weight != old_weight:
            split_seconds = time.monotonic() - saved
        if weight == step.weight and set(myapp_processes(twin)) == step.versions:
            break
        time.sleep(0.1)
    applied = time.monotonic() - saved
    time.sleep(settle)
    answers = stream.since(saved)
    after = myapp_processes(twin)
    swaps = [int(ms) for _, ms in ROUTES_APPLIED.findall(twin.output())[swaps_before:]]
    return StepResult(step, Counter(answers), [a for a in answers if a not in (V1, V2)], split_seconds, applied,
                      swaps, before, after)


def run_rollout(root: Path, *, start: int, threads: int, settle: float) -> list[StepResult]:
    twin, stack_file = start_watching(root, start)
    try:
        assert canary_weight(twin) == start, f"the twin did not start at canaryWeight {start}"
        results = []
        with Stream(twin.endpoints["meshUrl"], threads) as stream:
            time.sleep(1.0)
            for step in rollout_steps(start):
                results.append(apply_step(twin, stack_file, stream, step, settle=settle))
        return results
    finally:
        twin.stop()


def report(results: list[StepResult], header: str) -> None:
    print(header)
    print(f"machine: {os.cpu_count()} cores")
    for r in results:
        n = sum(r.answers.values())
        split = "unchanged" if r.split_seconds is None else f"{r.split_seconds:.1f} s"
        swaps = ", ".join(f"{ms} ms" for ms in r.route_swaps_ms) or "none"
        print(f"\n{r.step.name}  (load average {r.load[0]:.2f} {r.load[1]:.2f} {r.load[2]:.2f})")
        print(f"  failed requests        {len(r.failures)} of {n:,}   answers {dict(r.answers)}")
        print(f"  file saved -> split    {split}; step applied (split and processes) in {r.applied_seconds:.1f} s")
        print(f"  Envoy route swaps      {swaps}")
        print(f"  myapp processes        {r.processes_before} -> {r.processes_after}")
        if r.failures:
            print(f"  first failures         {r.failures[:3]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--start", type=int, default=10, help="canaryWeight the twin starts at (default 10)")
    parser.add_argument("--threads", type=int, default=2, help="concurrent clients (default 2)")
    parser.add_argument("--settle", type=float, default=8.0,
                        help="seconds of stream after each step is applied (default 8: past the 5 s drain)")
    parser.add_argument("--record", type=Path, metavar="DIR",
                        help="also write the report to DIR/rollout_stream-<UTC time>.txt")
    args = parser.parse_args()
    started = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory(prefix="bench-rollout-") as tmp:
        results = run_rollout(Path(tmp), start=args.start, threads=args.threads, settle=args.settle)
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        report(results, f"rollout_stream.py --start {args.start} --threads {args.threads} --settle {args.settle:g}, "
                        f"started {started:%Y-%m-%d %H:%M} UTC")
    sys.stdout.write(text.getvalue())
    if args.record is not None:
        args.record.mkdir(parents=True, exist_ok=True)
        path = args.record / f"rollout_stream-{started:%Y%m%dT%H%M%SZ}.txt"
        path.write_text(text.getvalue())
        print(f"recorded in {path}")
    return 1 if any(r.failures for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())

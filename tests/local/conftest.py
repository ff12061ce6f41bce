"""The twin as a user runs it: `python -m local up` in a subprocess, on free ports, in a temporary state folder.

`start_twin` waits for `ready in` and reads `endpoints.json`; stopping sends SIGINT (Ctrl-C) and then checks,
with psutil, that every process the twin started (moto, Lambda workers) is gone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from infra.config import PROJECT_DIR

PROGRAMS = Path(__file__).resolve().parent / "programs"
READY_TIMEOUT = 120.0


@dataclass
class RunningTwin:
    proc: subprocess.Popen[bytes]
    state_dir: Path
    log: Path
    endpoints: dict[str, str]
    children: list[psutil.Process] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return self.endpoints["apiUrl"]

    @property
    def aws_url(self) -> str:
        return self.endpoints["awsEndpointUrl"]

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def cli(self, *args: str, program: Path | None = None) -> subprocess.CompletedProcess[str]:
        extra = ["--program", str(program)] if program else []
        return subprocess.run([sys.executable, "-m", "local", *args, "--state-dir", str(self.state_dir), *extra],
                              cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120, check=False)

    def stop(self) -> int:
        """Ctrl-C, wait, and fail if any process the twin started is still alive."""
        self.children = psutil.Process(self.proc.pid).children(recursive=True) if self.proc.poll() is None else []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        _, alive = psutil.wait_procs(self.children, timeout=10)
        for proc in alive:
            proc.kill()
        assert not alive, f"processes left running after the twin stopped: {alive}"
        return code


def start_twin(state_dir: Path, *, program: Path | None = None, extra: tuple[str, ...] = ()) -> RunningTwin:
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "endpoints.json").unlink(missing_ok=True)
    log = state_dir / f"console-{time.monotonic_ns()}.log"
    argv = [sys.executable, "-m", "local", "up", "--state-dir", str(state_dir), "--port", "0", "--aws-port", "0",
            "--no-watch", *extra]
    if program is not None:
        argv += ["--program", str(program)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=PROJECT_DIR, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    twin = RunningTwin(proc, state_dir, log, {})
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the twin exited with {proc.returncode}:\n{twin.output()[-4000:]}")
        if "ready in" in twin.output() and (state_dir / "endpoints.json").exists():
            twin.endpoints = json.loads((state_dir / "endpoints.json").read_text())
            return twin
        time.sleep(0.1)
    twin.stop()
    raise TimeoutError(f"the twin was not ready within {READY_TIMEOUT} s:\n{twin.output()[-4000:]}")


@pytest.fixture(scope="session")
def dev_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTwin]:
    """The dev stack (Pulumi.dev.yaml, __main__.py) running in the twin (once per xdist worker; the modules that
    use it share the `local-dev-twin` xdist group, so once per run)."""
    twin = start_twin(tmp_path_factory.mktemp("twin-dev"))
    try:
        yield twin
    finally:
        twin.stop()

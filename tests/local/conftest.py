"""The twin as a user runs it: `python -m local up` in a subprocess, on free ports, in a temporary state folder.

`start_twin` waits for `ready in` and reads `endpoints.json`; stopping sends SIGINT (Ctrl-C) and then checks,
with psutil, that every process the twin started (moto, Lambda workers, services, Envoy) is gone.

A twin takes seconds to start. `--dist loadfile` (pyproject.toml) keeps each test file on one xdist worker, but
several files use the same twin and may run on both workers at once, so the fixtures share one twin per run
across workers (`shared_twin`: a file lock and a reference count in pytest's common temporary folder; the last
user stops it).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from infra.config import PROJECT_DIR

PROGRAMS = Path(__file__).resolve().parent / "programs"
READY_TIMEOUT = 120.0


@dataclass
class RunningTwin:
    proc: Any
    """The `subprocess.Popen` in the process that started the twin; None in xdist workers that attach by pid."""
    state_dir: Path
    log: Path
    endpoints: dict[str, str]
    children: list[psutil.Process] = field(default_factory=list)
    pid: int = 0

    def __post_init__(self) -> None:
        if not self.pid and self.proc is not None:
            self.pid = self.proc.pid

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

    def stop(self) -> int | None:
        """Ctrl-C, wait, and fail if any process the twin started is still alive. The exit code, when known."""
        try:
            me = psutil.Process(self.pid)
            self.children = me.children(recursive=True)
            me.send_signal(signal.SIGINT)
        except psutil.NoSuchProcess:
            return self.proc.wait() if self.proc else None
        try:
            if self.proc is not None:
                code = self.proc.wait(timeout=90)
            else:
                _wait_exit(me, timeout=90)
                code = None
        except (subprocess.TimeoutExpired, psutil.TimeoutExpired):
            me.kill()
            raise
        _, alive = psutil.wait_procs(self.children, timeout=10)
        for proc in alive:
            proc.kill()
        assert not alive, f"processes left running after the twin stopped: {alive}"
        return code


def _alive(pid: int) -> bool:
    """Running, and not a zombie (a twin another xdist worker started and stopped stays one until that exits)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_exit(proc: psutil.Process, timeout: float) -> None:
    """Wait for a process that is not our child to exit (or become a zombie of its parent)."""
    deadline = time.monotonic() + timeout
    while _alive(proc.pid):
        if time.monotonic() > deadline:
            raise psutil.TimeoutExpired(timeout, proc.pid)
        time.sleep(0.1)


def start_twin(state_dir: Path, *, program: Path | None = None, extra: tuple[str, ...] = (),
               watch: bool = False) -> RunningTwin:
    """`python -m local up` on free ports; the stack-file watcher is off unless a test changes the config."""
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "endpoints.json").unlink(missing_ok=True)
    log = state_dir / f"console-{time.monotonic_ns()}.log"
    argv = [sys.executable, "-m", "local", "up", "--state-dir", str(state_dir), "--port", "0", "--aws-port", "0",
            *([] if watch else ["--no-watch"]), *extra]
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
        if "[twin] ready in" in twin.output() and (state_dir / "endpoints.json").exists():
            twin.endpoints = json.loads((state_dir / "endpoints.json").read_text())
            return twin
        time.sleep(0.1)
    twin.stop()
    raise TimeoutError(f"the twin was not ready within {READY_TIMEOUT} s:\n{twin.output()[-4000:]}")


@contextlib.contextmanager
def shared_twin(factory: pytest.TempPathFactory, name: str, *, program: Path | None = None,
                extra: tuple[str, ...] = ()) -> Iterator[RunningTwin]:
    """One twin per test run for `name`, shared by every xdist worker that asks for it; the last user stops it."""
    base = factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    state = root / f"shared-{name}"
    info_path = root / f"shared-{name}.json"

    @contextlib.contextmanager
    def locked() -> Iterator[None]:
        with open(root / f"shared-{name}.lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    with locked():
        info = json.loads(info_path.read_text()) if info_path.exists() else None
        if info is not None and _alive(info["pid"]):
            twin = RunningTwin(None, state, Path(info["log"]), info["endpoints"], pid=info["pid"])
            info["refs"] += 1
        else:
            twin = start_twin(state, program=program, extra=extra)
            info = {"pid": twin.pid, "log": str(twin.log), "endpoints": twin.endpoints, "refs": 1}
        info_path.write_text(json.dumps(info))
    try:
        yield twin
    finally:
        with locked():
            info = json.loads(info_path.read_text())
            info["refs"] -= 1
            if info["refs"] == 0:
                info_path.unlink()
                twin.stop()
            else:
                info_path.write_text(json.dumps(info))


@pytest.fixture(scope="session")
def dev_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTwin]:
    """The dev stack (Pulumi.dev.yaml, __main__.py) running in the twin, once per test run."""
    with shared_twin(tmp_path_factory, "dev") as twin:
        yield twin

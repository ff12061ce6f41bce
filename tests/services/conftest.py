"""Fixtures for the services: a session PostgreSQL and each service run as `python -m services.<name>`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from local.postgres import ConnectionParams, PostgresServer
from tests.support.postgres import postgres_server
from tests.support.servers import LOOPBACK, free_port, stop_process, wait_for_http

REPO = Path(__file__).resolve().parents[2]


@dataclass
class RunningService:
    name: str
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def logs(self) -> list[dict[str, Any]]:
        """Every JSON line the service wrote to stdout so far (non-JSON lines fail the test)."""
        lines = self.log_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def wait_for_log(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0) -> dict[str, Any]:
        """The first log line matching `predicate`, waiting a little: access lines follow the response."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.logs():
                if predicate(line):
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching log line in {self.log_path}")
            time.sleep(0.05)

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        with self.client() as client:
            while time.monotonic() < deadline:
                if client.get("/ready").status_code == 200:
                    return
                time.sleep(0.05)
        raise TimeoutError(f"{self.name} not ready within {timeout}s; log:\n{self.log_path.read_text()[-3000:]}")


@contextmanager
def run_service(
    name: str, params: ConnectionParams, log_dir: Path, *, ready: bool = True, **extra_env: str
) -> Iterator[RunningService]:
    """Start the service's real entry point on 127.0.0.1 and a free port; SIGTERM and reap it after."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")},
        **params.env(),
        "HOST": LOOPBACK,
        "PORT": str(port),
        "LOG_LEVEL": "INFO",
        "PYTHONPATH": str(REPO),
        **extra_env,
    }
    log_path = log_dir / f"{name}-{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        service = RunningService(name, f"http://{LOOPBACK}:{port}", proc, log_path)
        try:
            wait_for_http(f"{service.url}/health", proc=proc)
            if ready:
                service.wait_ready()
            yield service
        finally:
            stop_process(proc)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for this session (one per xdist worker)."""
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("service-logs")

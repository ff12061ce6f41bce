"""Real myapp processes and one real Envoy on loopback, shared by the live mesh tests of a module."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from local.envoy import EnvoyProcess
from mesh.canary import CanarySettings
from mesh.envoy import ListenerSpec
from tests.support.servers import LOOPBACK, free_port, stop_process, wait_for_http


@contextmanager
def myapps(log_dir: Path, apps: dict[str, dict[str, str]]) -> Iterator[dict[str, tuple[str, int]]]:
    """``python -m services.myapp`` once per entry (VERSION -> extra env), started in parallel on free
    loopback ports; yields VERSION -> (ip, port) once every one answers /health."""
    procs: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    try:
        for version, env in apps.items():
            port = free_port()
            with open(log_dir / f"myapp-{version}-{port}.log", "wb") as log:
                procs[version] = (
                    subprocess.Popen(
                        [sys.executable, "-m", "services.myapp"],
                        env={
                            **os.environ,
                            "HOST": LOOPBACK,
                            "PORT": str(port),
                            "VERSION": version,
                            "LOG_LEVEL": "WARNING",
                            **env,
                        },
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    ),
                    port,
                )
        for proc, port in procs.values():
            wait_for_http(f"http://{LOOPBACK}:{port}/health", proc=proc)
        yield {version: (LOOPBACK, port) for version, (_, port) in procs.items()}
    finally:
        for proc, _ in procs.values():
            stop_process(proc)


@dataclass(frozen=True)
class Mesh:
    envoy: EnvoyProcess
    v1: tuple[str, int]
    v2: tuple[str, int]
    healthy: tuple[str, int]
    failing: tuple[str, int]

    @property
    def canary_url(self) -> str:
        return self.envoy.url("canary")

    @property
    def shop_url(self) -> str:
        return self.envoy.url("shop")


@pytest.fixture(scope="module")
def live_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    """myapp v1 and v2, a healthy and an always-failing upstream, and Envoy with a canary and a shop listener."""
    root = tmp_path_factory.mktemp("mesh")
    ingress = CanarySettings().gateways[0]
    listeners = [
        ListenerSpec(
            name="canary",
            port=free_port(),
            gateway=ingress,
            virtual_services=("myapp-vs",),
            default_host=CanarySettings().host,
        ),
        ListenerSpec(name="shop", port=free_port(), gateway=ingress, virtual_services=("shop-vs",)),
    ]
    with ExitStack() as stack:
        apps = stack.enter_context(
            myapps(root, {"1.0.0": {}, "2.0.0": {}, "healthy": {}, "failing": {"FAULT_PERCENT": "100"}})
        )
        envoy = stack.enter_context(EnvoyProcess(root / "envoy", listeners))
        yield Mesh(envoy=envoy, v1=apps["1.0.0"], v2=apps["2.0.0"], healthy=apps["healthy"], failing=apps["failing"])

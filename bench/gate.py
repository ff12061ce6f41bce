"""The canary gate's own cost inside `pulumi up`: its provider as the CLI runs it, judging raises and rollbacks.

    .venv/bin/python bench/gate.py [--rounds 20]

Starts the SDK's dynamic-provider host (`python -m pulumi.dynamic`, what `pulumi-resource-pulumi-python` runs) in
the venv made from requirements.txt alone, in the project folder, and calls it over gRPC as the engine does: a raise
10 -> 50 judged against a fake API server + Prometheus on 127.0.0.1 (three instant queries through the service
proxy), and a rollback 50 -> 0 (no query). Prints the host's start, the first raise (which unpickles the provider
and imports infra.gate), the median of the later raises and of the rollbacks, and the load average. A real cluster
adds the API server's and Prometheus' own latency per query; the analysis window is not waited for (the gate
judges the window that has just passed).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import grpc
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime.proto import provider_pb2_grpc

from infra.config import PROJECT_DIR
from infra.gate import CanaryGateProvider
from tests.infra.test_program_venv import _gate_request, program_venv
from tests.infra.test_prometheus_source import answer_window, fake_cluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    provider = serialize_provider(CanaryGateProvider())  # what the state keeps: a reference to infra.gate
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PULUMI_"))}
    python = program_venv() / "bin" / "python"
    started = time.monotonic()
    host = subprocess.Popen([str(python), "-u", "-m", "pulumi.dynamic"], cwd=PROJECT_DIR, env=env,
                            stdout=subprocess.PIPE)
    try:
        assert host.stdout is not None
        port = int(host.stdout.readline())
        ready = time.monotonic() - started
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = provider_pb2_grpc.ResourceProviderStub(channel)
        raises, rollbacks = [], []
        with fake_cluster() as cluster:
            answer_window(cluster, 60, "1200", "1", "25")
            for _ in range(args.rounds + 1):
                begin = time.monotonic()
                stub.Update(_gate_request("update", provider, cluster.url, 10, 50))
                raises.append(time.monotonic() - begin)
                begin = time.monotonic()
                stub.Update(_gate_request("update", provider, cluster.url, 50, 0))
                rollbacks.append(time.monotonic() - begin)
        channel.close()
    finally:
        host.terminate()
        host.wait(timeout=10)
    ms = 1000
    print(f"provider host ready: {ready * ms:.0f} ms")
    print(f"first raise (unpickle + import infra.gate + 3 queries): {raises[0] * ms:.0f} ms")
    print(f"raise, median of {args.rounds}: {statistics.median(raises[1:]) * ms:.1f} ms")
    print(f"rollback (no query), median of {args.rounds}: {statistics.median(rollbacks[1:]) * ms:.1f} ms")
    print("load average: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()

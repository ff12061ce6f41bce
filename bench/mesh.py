"""Mesh benchmark: latency through real Envoy vs straight to the app, and how fast a weight change lands.

    .venv/bin/python bench/mesh.py [--requests 3000] [--changes 10]

* latency: sequential keep-alive GET /version, p50/p99/mean, direct to myapp v1 and through Envoy's
  ingress listener with canaryWeight 0 (so both paths end at the same process);
* throughput: the same with 4 client threads;
* weight change: a steady stream at canaryWeight 0, then canaryWeight 100 is applied; reported are how
  long ``EnvoyProcess.apply`` takes (files swapped until Envoy reports the version), the time from the
  start of the change to the first v2 answer, and to the last v1 answer.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from local.envoy import EnvoyProcess
from mesh import canary
from mesh.canary import CanarySettings
from mesh.envoy import Endpoints, ListenerSpec

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@contextmanager
def myapp(version: str) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = {**os.environ, "HOST": LOOPBACK, "PORT": str(port), "VERSION": version, "LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.myapp"], env=env, start_new_session=True, stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection((LOOPBACK, port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"myapp {version} did not start") from None
                time.sleep(0.05)
        yield (LOOPBACK, port)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


def get_version(conn: http.client.HTTPConnection) -> str:
    conn.request("GET", "/version")
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        return str(response.status)
    return str(json.loads(body)["version"])


def latencies(port: int, n: int) -> list[float]:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
    for _ in range(100):  # warm-up: connections, code paths
        get_version(conn)
    out = []
    for _ in range(n):
        start = time.perf_counter()
        get_version(conn)
        out.append((time.perf_counter() - start) * 1000)
    conn.close()
    return out


def throughput(port: int, n: int, threads: int = 4) -> float:
    def worker(share: int) -> None:
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
        for _ in range(share):
            get_version(conn)
        conn.close()

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, [n // threads] * threads))
    return (n // threads * threads) / (time.perf_counter() - start)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def apply(envoy: EnvoyProcess, weight: int, v1: tuple[str, int], v2: tuple[str, int]) -> float:
    settings = CanarySettings(canary_weight=weight)
    endpoints: Endpoints = {(settings.host, "v1"): [v1], (settings.host, "v2"): [v2]}
    start = time.perf_counter()
    envoy.apply([canary.virtual_service(settings)], [canary.destination_rule(settings)], endpoints)
    return time.perf_counter() - start


def weight_change(
    envoy: EnvoyProcess, port: int, v1: tuple[str, int], v2: tuple[str, int]
) -> tuple[float, float, float]:
    """Seconds: apply() duration, change start -> first v2 answer, change start -> last v1 answer."""
    apply(envoy, 0, v1, v2)
    answers: list[tuple[float, str]] = []
    stop = threading.Event()

    def stream() -> None:
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
        while not stop.is_set():
            version = get_version(conn)
            answers.append((time.perf_counter(), version))
        conn.close()

    threads = [threading.Thread(target=stream) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    start = time.perf_counter()
    applied = apply(envoy, 100, v1, v2)
    time.sleep(0.3)
    stop.set()
    for thread in threads:
        thread.join()
    failures = [v for _, v in answers if v not in {"1.0.0", "2.0.0"}]
    if failures:
        raise RuntimeError(f"failed requests during the change: {failures[:5]}")
    first_v2 = min(t for t, v in answers if v == "2.0.0") - start
    last_v1 = max(t for t, v in answers if v == "1.0.0") - start
    return applied, first_v2, last_v1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--changes", type=int, default=10)
    args = parser.parse_args()

    with myapp("1.0.0") as v1, myapp("2.0.0") as v2, tempfile.TemporaryDirectory() as tmp:
        settings = CanarySettings()
        port = free_port()
        listener = ListenerSpec(name="canary", port=port, gateway=settings.gateways[0], default_host=settings.host)
        with EnvoyProcess(Path(tmp) / "envoy", [listener]) as envoy:
            apply(envoy, 0, v1, v2)
            direct = latencies(v1[1], args.requests)
            via = latencies(port, args.requests)
            print(f"latency over {args.requests} sequential keep-alive requests (ms):")
            for name, values in (("direct to myapp", direct), ("through Envoy", via)):
                p50, p99, mean = pct(values, 50), pct(values, 99), statistics.fmean(values)
                print(f"  {name:<16} p50 {p50:6.3f}  p99 {p99:6.3f}  mean {mean:6.3f}")
            added50, added99 = pct(via, 50) - pct(direct, 50), pct(via, 99) - pct(direct, 99)
            print(f"  Envoy adds        p50 {added50:+6.3f}  p99 {added99:+6.3f}")
            print("throughput with 4 client threads (requests/s):")
            print(f"  direct to myapp  {throughput(v1[1], args.requests):8.0f}")
            print(f"  through Envoy    {throughput(port, args.requests):8.0f}")

            results = [weight_change(envoy, port, v1, v2) for _ in range(args.changes)]
            print(f"weight change 0 -> 100 under a steady stream, {args.changes} runs (ms), zero failed requests:")
            for index, name in enumerate(
                ("apply() until Envoy reports it", "start -> first v2 answer", "start -> last v1 answer")
            ):
                values = [r[index] * 1000 for r in results]
                print(f"  {name:<31} median {statistics.median(values):7.1f}  max {max(values):7.1f}")


if __name__ == "__main__":
    main()

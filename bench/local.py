"""The local twin's numbers: time from `python -m local up` to ready (warm venv), and GET /todos/{id} latency.

    .venv/bin/python bench/local.py [--runs 3] [--requests 500]

Starts the dev stack's twin in a temporary state folder on free ports (as `make local` does, minus make), reads
`ready in N s` from its console, then creates a TODO and times N sequential `GET /todos/{id}` through the local
API gateway (gateway -> Lambda worker -> moto) on one keep-alive connection. Prints the load average too:
numbers from a busy 2-core machine are not comparable with a quiet one.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def start(state: Path, extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen[bytes], Path, float, float]:
    log = state / "console.log"
    t0 = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "local", "up", "--state-dir", str(state), "--port", "0",
                                 "--aws-port", "0", "--no-watch", *extra], cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT)
    while True:
        text = log.read_text(errors="replace")
        found = re.search(r"\[twin\] ready in ([\d.]+) s", text)
        if found:
            return proc, log, float(found[1]), time.monotonic() - t0
        if proc.poll() is not None:
            raise RuntimeError(text[-3000:])
        time.sleep(0.02)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="cold starts of the twin to time")
    parser.add_argument("--requests", type=int, default=500, help="GET /todos/{id} requests to time")
    args = parser.parse_args()
    print(f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    readies, walls = [], []
    latencies: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            state = Path(tmp) / f"run{run}"
            state.mkdir()
            proc, _, ready, wall = start(state)
            readies.append(ready)
            walls.append(wall)
            try:
                if run == args.runs - 1:
                    api = json.loads((state / "endpoints.json").read_text())["apiUrl"]
                    with requests.Session() as session:
                        todo = session.post(f"{api}/todos", json={"title": "bench"}, timeout=30).json()
                        for _ in range(20):  # warm: first calls build the boto3 client in the worker
                            session.get(f"{api}/todos/{todo['id']}", timeout=30).raise_for_status()
                        for _ in range(args.requests):
                            t = time.perf_counter()
                            r = session.get(f"{api}/todos/{todo['id']}", timeout=30)
                            latencies.append((time.perf_counter() - t) * 1000)
                            assert r.status_code == 200
            finally:
                stop(proc)
    print(f"time to ready (twin's own 'ready in', from process start): "
          f"median {statistics.median(readies):.2f} s, min {min(readies):.2f} s over {args.runs} runs")
    print(f"time to ready (wall, spawn -> 'ready in' line):             median {statistics.median(walls):.2f} s")
    print(f"GET /todos/{{id}} through the twin, {len(latencies)} sequential requests: "
          f"p50 {percentile(latencies, 50):.2f} ms, p99 {percentile(latencies, 99):.2f} ms, "
          f"max {max(latencies):.2f} ms")
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

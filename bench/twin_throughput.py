"""API throughput and latency through the twin at 1, 16 and 64 concurrent clients.

    .venv/bin/python bench/twin_throughput.py [--seconds 10] [--concurrency 1 16 64] [--max-workers 4]

Starts the dev stack's twin on free ports, creates a TODO, then for each concurrency runs that many clients (one
keep-alive session each) doing `GET /todos/{id}` back to back for `--seconds`: gateway -> Lambda worker -> moto, as
a user's requests go. Prints requests per second answered 200, p50/p99 of those, and what else came back: 429 is
the stage's throttle (`apiThrottleRateLimit`/`apiThrottleBurstLimit`, enforced as API Gateway's token bucket), 500
a Lambda throttle. The load average is printed: numbers from a busy 2-core machine compare only with themselves.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.local import percentile, start, stop


def run_clients(url: str, clients: int, seconds: float) -> tuple[Counter[int], list[float], float]:
    codes: Counter[int] = Counter()
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(_: int) -> None:
        session = requests.Session()
        mine: list[tuple[int, float]] = []
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            status = session.get(url, timeout=60).status_code
            mine.append((status, time.perf_counter() - t0))
        with lock:
            for status, took in mine:
                codes[status] += 1
                if status == 200:
                    latencies.append(took)

    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return codes, latencies, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--max-workers", type=int, default=4, help="the twin's Lambda workers per function")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        proc, _, ready, _ = start(Path(tmp), extra=("--max-workers", str(args.max_workers)))
        try:
            api = json.loads((Path(tmp) / "endpoints.json").read_text())["apiUrl"]
            todo = requests.post(f"{api}/todos", json={"title": "bench"}, timeout=30).json()
            url = f"{api}/todos/{todo['id']}"
            print(f"twin ready in {ready:.1f} s; GET /todos/{{id}} for {args.seconds:g} s per concurrency, "
                  f"{args.max_workers} Lambda workers per function at most")
            print(f"{'clients':>7} {'req/s (200)':>12} {'p50 ms':>8} {'p99 ms':>8}  other answers")
            for clients in args.concurrency:
                time.sleep(2.0)  # the stage's token bucket refills between rounds
                codes, latencies, elapsed = run_clients(url, clients, args.seconds)
                other = ", ".join(f"{n}x{code}" for code, n in sorted(codes.items()) if code != 200) or "-"
                p50 = percentile(latencies, 50) * 1000 if latencies else float("nan")
                p99 = percentile(latencies, 99) * 1000 if latencies else float("nan")
                print(f"{clients:>7} {len(latencies) / elapsed:>12.1f} {p50:>8.1f} {p99:>8.1f}  {other}")
        finally:
            stop(proc)
    print("load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()

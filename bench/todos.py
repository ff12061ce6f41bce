#!/usr/bin/env python
"""Benchmark of the TODO functions: cold imports, warm latency per operation, and page time vs table size.

Runs everything on this machine: a moto server it starts on 127.0.0.1 (and stops), the real handlers driven by
API Gateway v1 proxy events. Prints Markdown tables (pasted into the README).

    .venv/bin/python bench/todos.py                 # full run (seeds 100,000 items; a few minutes)
    .venv/bin/python bench/todos.py --sizes 1000 10000 --iterations 100   # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TABLE = "todos-bench"
HANDLER_LOG: Path | None = None
ENTRY_POINTS = ("list_todos", "get_todo", "create_todo", "update_todo", "delete_todo")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


@contextmanager
def environment(endpoint: str) -> Iterator[None]:
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "TABLE_NAME": TABLE,
            "POWERTOOLS_SERVICE_NAME": "todos",
            "LOG_LEVEL": "INFO",
        }
    )
    yield


def dynamodb() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("dynamodb", config=Config(max_pool_connections=32))


def fresh_table() -> Any:
    from infra.tables import TODOS
    from tests.support.dynamo import create_table

    client = dynamodb()
    if TABLE in client.list_tables()["TableNames"]:
        client.delete_table(TableName=TABLE)
    create_table(client, TODOS, TABLE)
    return client


# --- cold imports -------------------------------------------------------------------------------------------

_COLD_SCRIPT = """
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
from functions.todos import handlers
t1, c1 = time.perf_counter(), time.process_time()
logger = handlers.logger.registered_handler.setStream(open("/dev/null", "w"))
from tests.support.events import lambda_context
event = json.loads(sys.stdin.read())
response = getattr(handlers, sys.argv[1])(event, lambda_context(sys.argv[1]))
t2, c2 = time.perf_counter(), time.process_time()
assert response["statusCode"] < 300, response
print(json.dumps({"import": t1 - t0, "first_call": t2 - t1, "import_cpu": c1 - c0, "first_call_cpu": c2 - c1}))
"""


def cold_starts(runs: int) -> str:
    """Each entry point in a fresh interpreter: module import, then its first call (boto3 import + client)."""
    from tests.support.events import api_event

    client = fresh_table()
    rows = []
    for name in ENTRY_POINTS:
        imports, firsts, wall, import_cpu, first_cpu = [], [], [], [], []
        for _ in range(runs):
            todo_id = seed(client, 1)[0]
            event = {
                "list_todos": api_event("GET", "/todos"),
                "get_todo": item_event("GET", todo_id),
                "create_todo": api_event("POST", "/todos", body={"title": "cold"}),
                "update_todo": item_event("PUT", todo_id, {"completed": True}),
                "delete_todo": item_event("DELETE", todo_id),
            }[name]
            started = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", _COLD_SCRIPT, name],
                input=json.dumps(event),
                capture_output=True,
                text=True,
                cwd=ROOT,
                check=True,
            )
            wall.append(time.perf_counter() - started)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            imports.append(result["import"])
            firsts.append(result["first_call"])
            import_cpu.append(result["import_cpu"])
            first_cpu.append(result["first_call_cpu"])
        rows.append(
            [
                f"functions.todos.handlers.{name}",
                ms(statistics.median(imports)),
                ms(statistics.median(import_cpu)),
                ms(statistics.median(firsts)),
                ms(statistics.median(first_cpu)),
                ms(statistics.median(wall)),
            ]
        )
    # CPU time is what a quiet Lambda sandbox would spend; wall time also counts waiting for a busy machine.
    headers = ["entry point", "import ms", "import CPU ms", "first call ms", "first call CPU ms", "process wall ms"]
    return table(headers, rows)


# --- warm latency -------------------------------------------------------------------------------------------


def item_event(method: str, todo_id: str, body: Any = None) -> dict[str, Any]:
    from tests.support.events import api_event

    return api_event(method, f"/todos/{todo_id}", resource="/todos/{id}", path_parameters={"id": todo_id}, body=body)


def seed(client: Any, count: int, threads: int = 1, start: int = 0) -> list[str]:
    """BatchWriteItem in chunks of 25 (in `threads` threads), returning the new ids."""
    from functions.todos.adapters import to_item
    from functions.todos.logic import new_id, utc_now
    from functions.todos.models import Todo

    stamp = utc_now()
    ids = [new_id() for _ in range(count)]

    def write(chunk: list[str]) -> None:
        pending: dict[str, Any] = {
            TABLE: [
                {
                    "PutRequest": {
                        "Item": to_item(
                            Todo(
                                id=i,
                                title=f"todo {start + n}",
                                description="seeded by bench/todos.py",
                                completed=False,
                                createdAt=stamp,
                                updatedAt=stamp,
                            )
                        )
                    }
                }
                for n, i in enumerate(chunk)
            ]
        }
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}

    chunks = [ids[i : i + 25] for i in range(0, count, 25)]
    if threads == 1:
        for chunk in chunks:
            write(chunk)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(write, chunks))
    return ids


Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


LAST_BODY: list[str] = [""]
CPU: list[float] = []  # handler CPU seconds of every `timed` call, in order (moto's CPU is another process)


def timed(handler: Handler, event: dict[str, Any], ctx: Any, expect: int) -> float:
    """Wall time of one invocation (the event is built beforehand, as API Gateway would have)."""
    started, cpu = time.perf_counter(), time.process_time()
    response = handler(event, ctx)
    elapsed = time.perf_counter() - started
    CPU.append(time.process_time() - cpu)
    LAST_BODY[:] = [response.get("body") or ""]
    if response["statusCode"] != expect:
        errors = [line for line in HANDLER_LOG.read_text().splitlines() if '"ERROR"' in line] if HANDLER_LOG else []
        raise RuntimeError(f"{response['statusCode']} instead of {expect}: {response['body']}; log: {errors[-1:]}")
    return elapsed


def warm_latency(iterations: int) -> str:
    from functions.common import aws
    from functions.todos import handlers
    from tests.support.events import api_event, lambda_context

    client = fresh_table()
    aws.reset()
    ctx: Any = lambda_context("bench")
    seed(client, 200)
    for _ in range(20):  # warm up: imports, client, connection pool
        handlers.list_todos(api_event("GET", "/todos"), ctx)

    samples: dict[str, list[float]] = {name: [] for name in ENTRY_POINTS}
    cpu: dict[str, list[float]] = {}
    CPU.clear()
    ids: list[str] = []
    for _ in range(iterations):
        event = api_event("POST", "/todos", body={"title": "bench", "description": "warm"})
        samples["create_todo"].append(timed(handlers.create_todo, event, ctx, 201))
        ids.append(json.loads(LAST_BODY[0])["id"])
    cpu["create_todo"], CPU[:] = CPU[:], []
    for todo_id in ids:
        samples["get_todo"].append(timed(handlers.get_todo, item_event("GET", todo_id), ctx, 200))
    cpu["get_todo"], CPU[:] = CPU[:], []
    for n, todo_id in enumerate(ids):
        event = item_event("PUT", todo_id, {"title": f"renamed {n}", "completed": True})
        samples["update_todo"].append(timed(handlers.update_todo, event, ctx, 200))
    cpu["update_todo"], CPU[:] = CPU[:], []
    for _ in range(iterations):
        event = api_event("GET", "/todos", query={"limit": "50"})
        samples["list_todos"].append(timed(handlers.list_todos, event, ctx, 200))
    cpu["list_todos"], CPU[:] = CPU[:], []
    for todo_id in ids:
        samples["delete_todo"].append(timed(handlers.delete_todo, item_event("DELETE", todo_id), ctx, 204))
    cpu["delete_todo"], CPU[:] = CPU[:], []

    # The same DynamoDB calls straight through boto3: what is left is the handler's own cost.
    raw: dict[str, list[float]] = {"get_todo": [], "list_todos": []}
    for todo_id in seed(client, iterations):
        started = time.perf_counter()
        client.get_item(TableName=TABLE, Key={"id": {"S": todo_id}}, ConsistentRead=True)
        raw["get_todo"].append(time.perf_counter() - started)
    for _ in range(iterations):
        started = time.perf_counter()
        client.scan(TableName=TABLE, Limit=50)
        raw["list_todos"].append(time.perf_counter() - started)

    rows = []
    labels = {
        "list_todos": "GET /todos?limit=50",
        "get_todo": "GET /todos/{id}",
        "create_todo": "POST /todos",
        "update_todo": "PUT /todos/{id}",
        "delete_todo": "DELETE /todos/{id}",
    }
    for name in ENTRY_POINTS:
        values = samples[name]
        base = ms(statistics.median(raw[name])) if name in raw else "-"
        rows.append(
            [
                labels[name],
                str(len(values)),
                ms(percentile(values, 50)),
                ms(percentile(values, 99)),
                ms(percentile(cpu[name], 50)),
                base,
            ]
        )
    return table(["operation", "n", "p50 ms", "p99 ms", "handler CPU p50 ms", "bare boto3 call p50 ms"], rows)


# --- page time vs table size ----------------------------------------------------------------------------------


def page_scaling(sizes: list[int], repeats: int, seed_threads: int) -> str:
    """One page at each table size: total handler time, the Scan call inside it, and what is left (our code)."""
    from functions.common import aws
    from functions.todos import handlers
    from functions.todos.logic import encode_token
    from tests.support.events import api_event, lambda_context

    client = fresh_table()
    aws.reset()
    ctx: Any = lambda_context("bench")
    scans: list[dict[str, float]] = []
    events = aws.client("dynamodb").meta.events

    def before(**_: Any) -> None:
        scans.append({"started": time.perf_counter()})

    def after(parsed: dict[str, Any], **_: Any) -> None:
        scans[-1]["seconds"] = time.perf_counter() - scans[-1]["started"]
        scans[-1]["scanned"] = float(parsed.get("ScannedCount", 0))

    events.register("before-call.dynamodb.Scan", before)
    events.register("after-call.dynamodb.Scan", after)
    rows = []
    have = 0
    for size in sorted(sizes):
        started = time.perf_counter()
        ids = seed(client, size - have, threads=seed_threads, start=have)
        seed_seconds = time.perf_counter() - started
        have = size
        middle = encode_token(sorted(ids)[len(ids) // 2])
        for label, query in (("first", {"limit": "50"}), ("middle", {"limit": "50", "nextToken": middle})):
            event = api_event("GET", "/todos", query=query)
            scans.clear()
            totals = [timed(handlers.list_todos, event, ctx, 200) for _ in range(repeats)]
            assert len(scans) == repeats, "each page must be exactly one Scan call"
            scan_times = [s["seconds"] for s in scans]
            own = [total - scan for total, scan in zip(totals, scan_times, strict=True)]
            body = handlers.list_todos(event, ctx)["body"]
            rows.append(
                [
                    f"{size:,}",
                    label,
                    str(len(json.loads(body)["items"])),
                    str(int(max(s["scanned"] for s in scans))),
                    str(len(body)),
                    ms(statistics.median(totals)),
                    ms(statistics.median(scan_times)),
                    ms(statistics.median(own)),
                    f"{seed_seconds:.1f}" if label == "first" else "",
                ]
            )
    return table(
        [
            "items in table",
            "page",
            "items returned",
            "items read (ScannedCount)",
            "response bytes",
            "handler total ms",
            "of which moto Scan ms",
            "handler's own ms",
            "seeding s",
        ],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=300, help="requests per operation for warm latency")
    parser.add_argument("--cold-runs", type=int, default=5, help="fresh processes per entry point")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000], help="table sizes for page time")
    parser.add_argument("--page-repeats", type=int, default=10, help="page fetches per size (median)")
    parser.add_argument("--seed-threads", type=int, default=8, help="threads issuing BatchWriteItem")
    sections = ["cold", "warm", "pages"]
    parser.add_argument("--sections", nargs="+", choices=sections, default=sections, help="what to run")
    args = parser.parse_args()

    from tests.support.servers import moto_server

    with tempfile.TemporaryDirectory() as logs, moto_server(Path(logs)) as endpoint, environment(endpoint):
        from functions.todos import handlers

        # Keep INFO logging on (its cost is part of the handler) but write it to a file, not the table output.
        log_path = Path(logs) / "handlers.log"
        handlers.logger.registered_handler.setStream(open(log_path, "w"))  # type: ignore[attr-defined]  # noqa: SIM115
        global HANDLER_LOG
        HANDLER_LOG = log_path
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"moto server {endpoint}; python {sys.version.split()[0]}; {os.cpu_count()} cpus; load average {load}\n")
        if "cold" in args.sections:
            print(f"## Cold start (fresh process, median of {args.cold_runs})\n")
            print(cold_starts(args.cold_runs), "\n", flush=True)
        if "warm" in args.sections:
            print(f"## Warm latency per operation ({args.iterations} requests each, in-process, moto on loopback)\n")
            print(warm_latency(args.iterations), "\n", flush=True)
        if "pages" in args.sections:
            print(f"## One page (limit 50) vs table size (median of {args.page_repeats})\n")
            print(page_scaling(args.sizes, args.page_repeats, args.seed_threads), flush=True)
            print(
                "\nEach page is one Scan call with Limit=50: items read, response size and the handler's own time are"
                "\nthe same at every size. moto's emulated Scan sorts the whole table on every call (its Table.scan"
                "\nsorts all_items() before skipping to ExclusiveStartKey), so the moto column grows with the table;"
                "\nDynamoDB reads only the page's items (read capacity is charged per item read, here 50)."
            )
        print(f"\nload average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

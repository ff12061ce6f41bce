"""Reservations per second on real PostgreSQL: our atomic reserve vs the seed's read-then-update.

    .venv/bin/python bench/orders.py [--seconds 3] [--concurrency 1 16 64] [--stock 100] [--attempts 400]

Starts its own PostgreSQL (pgserver binaries, 127.0.0.1, default durability settings) in a temporary
folder and stops it at the end. Every worker has its own connection and hammers ONE product (the
"last items" case the issue is about), so both approaches contend on the same row.

- ours: `services.inventory.repository.reserve` - the service's own code: one statement that decrements
  only if `stock >= quantity` and records the reservation keyed by orderId (CHECK stock >= 0 as well).
- seed: the seed's order Lambda + inventory service - `SELECT stock`, compare in the client, then
  `UPDATE ... SET stock = stock - quantity` on a table without a CHECK (two round trips, nothing recorded).

Two phases per concurrency level and approach:
1. throughput: plenty of stock, as many 1-unit reservations as the workers can do in `--seconds`.
2. oversell: `--stock` units, `--attempts` 1-unit reservations in total; count what was sold.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import AsyncConnection

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from local.postgres import ConnectionParams, PostgresServer
from services.common.errors import ServiceError
from services.common.schema import INVENTORY
from services.inventory import repository

PRODUCT = "hot-item"
PLENTY = 1_000_000_000
SEED_SCHEMA = "CREATE TABLE IF NOT EXISTS seed_inventory (product_id text PRIMARY KEY, stock integer NOT NULL)"

Reserve = Callable[[AsyncConnection], Awaitable[bool]]


async def ours(conn: AsyncConnection) -> bool:
    try:
        await repository.reserve(conn, order_id=uuid.uuid4().hex, product_id=PRODUCT, quantity=1)
        return True
    except ServiceError:  # INSUFFICIENT_STOCK (nothing taken)
        return False


async def seed(conn: AsyncConnection) -> bool:
    cur = await conn.execute("SELECT stock FROM seed_inventory WHERE product_id = %s", (PRODUCT,))
    row = await cur.fetchone()
    if row is None or row[0] < 1:
        return False
    await conn.execute("UPDATE seed_inventory SET stock = stock - %s WHERE product_id = %s", (1, PRODUCT))
    return True


APPROACHES: dict[str, Reserve] = {"ours": ours, "seed": seed}


@dataclass
class Run:
    successes: int
    attempts: int
    seconds: float
    latencies_ms: list[float]


async def reset(params: ConnectionParams, stock: int) -> None:
    async with await AsyncConnection.connect(params.conninfo(), autocommit=True) as conn:
        await conn.execute("TRUNCATE reservations, inventory")
        await conn.execute("INSERT INTO inventory (product_id, stock) VALUES (%s, %s)", (PRODUCT, stock))
        await conn.execute("TRUNCATE seed_inventory")
        await conn.execute("INSERT INTO seed_inventory (product_id, stock) VALUES (%s, %s)", (PRODUCT, stock))
        await conn.execute("VACUUM ANALYZE inventory")
        await conn.execute("VACUUM ANALYZE seed_inventory")


async def final_stock(params: ConnectionParams, approach: str) -> int:
    table = "inventory" if approach == "ours" else "seed_inventory"
    async with await AsyncConnection.connect(params.conninfo(), autocommit=True) as conn:
        cur = await conn.execute(f"SELECT stock FROM {table} WHERE product_id = %s", (PRODUCT,))
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


async def hammer(
    params: ConnectionParams, reserve: Reserve, concurrency: int, *, seconds: float | None, attempts: int | None
) -> Run:
    """`concurrency` workers, one connection each, started together; stop on time or on attempts."""
    conns = [await AsyncConnection.connect(params.conninfo(), autocommit=True) for _ in range(concurrency)]
    tickets = itertools.count()
    latencies: list[float] = []
    successes = 0
    start = asyncio.Event()

    async def worker(conn: AsyncConnection, deadline_box: list[float]) -> None:
        nonlocal successes
        await start.wait()
        while True:
            if seconds is not None and time.perf_counter() >= deadline_box[0]:
                return
            if attempts is not None and next(tickets) >= attempts:
                return
            began = time.perf_counter()
            if await reserve(conn):
                successes += 1
            latencies.append((time.perf_counter() - began) * 1000)

    deadline_box = [0.0]
    tasks = [asyncio.create_task(worker(conn, deadline_box)) for conn in conns]
    began = time.perf_counter()
    deadline_box[0] = began + (seconds or 0)
    start.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    for conn in conns:
        await conn.close()
    return Run(successes, len(latencies), elapsed, latencies)


def percentile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def bench(params: ConnectionParams, levels: list[int], seconds: float, stock: int, attempts: int) -> None:
    async with await AsyncConnection.connect(params.conninfo(), autocommit=True) as conn:
        for statement in (*INVENTORY, SEED_SCHEMA):  # the bootstrap's inventory tables, no roles: a bench of SQL
            await conn.execute(statement)  # type: ignore[arg-type]

    print(f"one hot product; throughput phase {seconds:.0f}s per run; oversell phase: {stock} units, "
          f"{attempts} one-unit attempts")
    print()
    header = (
        f"{'approach':<8} {'conc':>4} {'reserv/s':>10} {'p50 ms':>8} {'p99 ms':>8} | "
        f"{'sold':>5} {'of stock':>8} {'oversold':>8} {'final stock':>11}"
    )
    print(header)
    print("-" * len(header))
    for concurrency in levels:
        for name, reserve in APPROACHES.items():
            await reset(params, PLENTY)
            run = await hammer(params, reserve, concurrency, seconds=seconds, attempts=None)
            rate = run.successes / run.seconds

            await reset(params, stock)
            limited = await hammer(params, reserve, concurrency, seconds=None, attempts=attempts)
            left = await final_stock(params, name)
            oversold = max(0, limited.successes - stock)
            p50, p99 = percentile(run.latencies_ms, 50), percentile(run.latencies_ms, 99)
            print(
                f"{name:<8} {concurrency:>4} {rate:>10.0f} {p50:>8.2f} {p99:>8.2f} | "
                f"{limited.successes:>5} {stock:>8} {oversold:>8} {left:>11}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--stock", type=int, default=100)
    parser.add_argument("--attempts", type=int, default=400)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-orders-pg-"))
    server = PostgresServer(root)
    try:
        server.start()
        params = server.create_database("bench_orders")
        with psycopg.connect(params.conninfo()) as conn:
            version = conn.execute("SHOW server_version").fetchone()
        print(f"PostgreSQL {version[0] if version else '?'} on 127.0.0.1:{params.port} (fsync on, default settings)")
        asyncio.run(bench(params, args.concurrency, args.seconds, args.stock, args.attempts))
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Inventory under concurrent HTTP load against real PostgreSQL: no oversell, no double decrement."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from local.postgres import ConnectionParams, PostgresServer
from tests.services.conftest import RunningService, run_service
from tests.support.postgres import ShopDatabase, bootstrapped_database, execute

T = TypeVar("T")


@pytest.fixture(scope="module")
def shop(postgres: PostgresServer) -> ShopDatabase:
    return bootstrapped_database(postgres, "inventory_load", seed=False)


@pytest.fixture(scope="module")
def db(shop: ShopDatabase) -> ConnectionParams:
    """The master's params: the test arranges and inspects rows with them (the service has its own role)."""
    return shop.master


@pytest.fixture(scope="module")
def service(shop: ShopDatabase, log_dir: Path) -> Iterator[RunningService]:
    with run_service("inventory", shop.role("inventory"), log_dir) as svc:
        yield svc


@pytest.fixture(autouse=True)
def _empty(service: RunningService, db: ConnectionParams) -> None:
    execute(db, "TRUNCATE reservations, inventory")


def all_at_once(count: int, call: Callable[[httpx.Client, int], T]) -> list[T]:
    """Run `call` from `count` threads released together (httpx's pool gives each its own connection)."""
    barrier = threading.Barrier(count)
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)

    with httpx.Client(timeout=60, limits=limits) as client:

        def worker(i: int) -> T:
            barrier.wait()
            return call(client, i)

        with ThreadPoolExecutor(max_workers=count) as pool:
            return list(pool.map(worker, range(count)))


def test_200_concurrent_single_unit_reservations_of_stock_50_sell_exactly_50(
    service: RunningService, db: ConnectionParams
) -> None:
    execute(db, "INSERT INTO inventory (product_id, stock) VALUES ('hot', 50)")

    def buy(client: httpx.Client, i: int) -> httpx.Response:
        body = {"orderId": f"order-{i}", "productId": "hot", "quantity": 1}
        return client.post(f"{service.url}/api/inventory/reserve", json=body)

    responses = all_at_once(200, buy)

    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 50
    assert statuses.count(409) == 150
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {"INSUFFICIENT_STOCK"}
    # Every success saw a different "stock left": the decrements were serialised, none lost or doubled.
    assert sorted(r.json()["stock"] for r in responses if r.status_code == 200) == list(range(50))
    assert execute(db, "SELECT stock FROM inventory WHERE product_id = 'hot'") == [(0,)]
    assert execute(db, "SELECT count(*), sum(quantity) FROM reservations") == [(50, 50)]


def test_same_order_id_sent_concurrently_decrements_once(service: RunningService, db: ConnectionParams) -> None:
    execute(db, "INSERT INTO inventory (product_id, stock) VALUES ('p1', 100)")

    def retry_storm(client: httpx.Client, _: int) -> httpx.Response:
        body = {"orderId": "same-order", "productId": "p1", "quantity": 3}
        return client.post(f"{service.url}/api/inventory/reserve", json=body)

    responses = all_at_once(30, retry_storm)

    assert {r.status_code for r in responses} == {200}
    assert {r.json()["stock"] for r in responses} == {97}
    assert execute(db, "SELECT stock FROM inventory WHERE product_id = 'p1'") == [(97,)]
    assert execute(db, "SELECT count(*) FROM reservations") == [(1,)]


def test_concurrent_releases_of_one_order_restore_stock_once(service: RunningService, db: ConnectionParams) -> None:
    execute(db, "INSERT INTO inventory (product_id, stock) VALUES ('p1', 10)")
    with service.client() as client:
        assert client.post(
            "/api/inventory/reserve", json={"orderId": "o-1", "productId": "p1", "quantity": 4}
        ).json()["stock"] == 6

    def release(client: httpx.Client, _: int) -> httpx.Response:
        return client.post(f"{service.url}/api/inventory/release", json={"orderId": "o-1"})

    responses = all_at_once(20, release)

    assert {(r.status_code, r.json()["status"]) for r in responses} == {(200, "released")}
    assert execute(db, "SELECT stock FROM inventory WHERE product_id = 'p1'") == [(10,)]


def test_duplicate_order_racing_an_uncommitted_reservation_rolls_back_its_decrement(
    service: RunningService, db: ConnectionParams
) -> None:
    """Deterministic version of the retry storm: the duplicate passes NOT EXISTS while the first is in flight."""
    import time

    import psycopg

    from services.inventory.repository import RESERVE_SQL

    execute(db, "INSERT INTO inventory (product_id, stock) VALUES ('p1', 10)")
    params = {"order_id": "o-race", "product_id": "p1", "quantity": 2}
    with psycopg.connect(db.conninfo()) as first:
        first.execute(RESERVE_SQL, params)  # holds the row lock and the uncommitted reservation
        result: dict[str, httpx.Response] = {}

        def duplicate() -> None:
            with service.client() as client:
                result["response"] = client.post(
                    "/api/inventory/reserve", json={"orderId": "o-race", "productId": "p1", "quantity": 2}
                )

        thread = threading.Thread(target=duplicate)
        thread.start()
        # Wait until the duplicate is blocked behind our lock, then commit the first reservation.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            waiting = execute(db, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            if waiting[0][0] >= 1:
                break
            time.sleep(0.02)
        first.commit()
        thread.join(timeout=30)

    response = result["response"]
    assert response.status_code == 200
    assert response.json() == {"orderId": "o-race", "productId": "p1", "quantity": 2, "stock": 8}
    assert execute(db, "SELECT stock FROM inventory WHERE product_id = 'p1'") == [(8,)]
    assert execute(db, "SELECT count(*) FROM reservations") == [(1,)]

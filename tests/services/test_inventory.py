"""Inventory over HTTP against real PostgreSQL: every status code of the API, and what is stored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from local.postgres import ConnectionParams, PostgresServer
from tests.services.conftest import RunningService, run_service
from tests.support.postgres import ShopDatabase, bootstrapped_database, execute


@pytest.fixture(scope="module")
def shop(postgres: PostgresServer) -> ShopDatabase:
    return bootstrapped_database(postgres, "inventory", seed=False)


@pytest.fixture(scope="module")
def db(shop: ShopDatabase) -> ConnectionParams:
    """The master's params: the test arranges and inspects rows with them (the service has its own role)."""
    return shop.master


@pytest.fixture(scope="module")
def service(shop: ShopDatabase, log_dir: Path) -> Iterator[RunningService]:
    with run_service("inventory", shop.role("inventory"), log_dir, MAX_RESERVE_QUANTITY="10") as svc:
        yield svc


@pytest.fixture
def client(service: RunningService, db: ConnectionParams) -> Iterator[httpx.Client]:
    execute(db, "TRUNCATE reservations, inventory")
    with service.client() as c:
        yield c


def stock_of(db: ConnectionParams, product_id: str, stock: int) -> None:
    execute(db, "INSERT INTO inventory (product_id, stock) VALUES (%s, %s)", (product_id, stock))


def current_stock(db: ConnectionParams, product_id: str) -> int:
    return int(execute(db, "SELECT stock FROM inventory WHERE product_id = %s", (product_id,))[0][0])


def reservations(db: ConnectionParams) -> list[tuple[str, str, int, str]]:
    return [
        (r[0], r[1], int(r[2]), r[3])
        for r in execute(db, "SELECT order_id, product_id, quantity, status FROM reservations ORDER BY order_id")
    ]


def reserve(client: httpx.Client, order_id: str, product_id: str, quantity: object) -> httpx.Response:
    return client.post(
        "/api/inventory/reserve", json={"orderId": order_id, "productId": product_id, "quantity": quantity}
    )


def test_get_stock_returns_product_and_stock(client: httpx.Client, db: ConnectionParams) -> None:
    stock_of(db, "p1", 7)
    response = client.get("/api/inventory/p1")
    assert response.status_code == 200
    assert response.json() == {"productId": "p1", "stock": 7}


def test_get_stock_of_unknown_product_returns_404_envelope(client: httpx.Client) -> None:
    response = client.get("/api/inventory/nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "PRODUCT_NOT_FOUND"
    assert "nope" in response.json()["error"]["message"]


def test_reserve_decrements_stock_and_records_the_reservation(client: httpx.Client, db: ConnectionParams) -> None:
    stock_of(db, "p1", 5)
    response = reserve(client, "o-1", "p1", 2)
    assert response.status_code == 200
    assert response.json() == {"orderId": "o-1", "productId": "p1", "quantity": 2, "stock": 3}
    assert current_stock(db, "p1") == 3
    assert reservations(db) == [("o-1", "p1", 2, "reserved")]


def test_reserve_same_order_twice_decrements_once_and_answers_the_same(
    client: httpx.Client, db: ConnectionParams
) -> None:
    stock_of(db, "p1", 5)
    first = reserve(client, "o-1", "p1", 2)
    reserve(client, "o-2", "p1", 1)  # stock moves on; the replay still reports what o-1 left
    second = reserve(client, "o-1", "p1", 2)
    assert second.status_code == 200
    assert second.json() == first.json() == {"orderId": "o-1", "productId": "p1", "quantity": 2, "stock": 3}
    assert current_stock(db, "p1") == 2
    assert len(reservations(db)) == 2


@pytest.mark.parametrize(("product_id", "quantity"), [("p1", 3), ("p2", 2)])
def test_reserve_same_order_with_different_request_returns_409_mismatch(
    client: httpx.Client, db: ConnectionParams, product_id: str, quantity: int
) -> None:
    stock_of(db, "p1", 5)
    stock_of(db, "p2", 5)
    assert reserve(client, "o-1", "p1", 2).status_code == 200
    response = reserve(client, "o-1", product_id, quantity)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "IDEMPOTENCY_MISMATCH"
    assert (current_stock(db, "p1"), current_stock(db, "p2")) == (3, 5)


def test_reserve_more_than_stock_returns_409_and_records_nothing(client: httpx.Client, db: ConnectionParams) -> None:
    stock_of(db, "p1", 2)
    response = reserve(client, "o-1", "p1", 3)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "INSUFFICIENT_STOCK"
    assert current_stock(db, "p1") == 2
    assert reservations(db) == []


def test_reserve_exactly_the_remaining_stock_leaves_zero(client: httpx.Client, db: ConnectionParams) -> None:
    stock_of(db, "p1", 4)
    response = reserve(client, "o-1", "p1", 4)
    assert response.status_code == 200
    assert response.json()["stock"] == 0
    assert reserve(client, "o-2", "p1", 1).status_code == 409


def test_reserve_unknown_product_returns_404_and_records_nothing(client: httpx.Client, db: ConnectionParams) -> None:
    response = reserve(client, "o-1", "ghost", 1)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "PRODUCT_NOT_FOUND"
    assert reservations(db) == []


@pytest.mark.parametrize("quantity", [0, -1, 1.5, "2", True, None, 11, 10_000])
def test_reserve_bad_quantity_returns_422(client: httpx.Client, db: ConnectionParams, quantity: object) -> None:
    stock_of(db, "p1", 100)
    response = reserve(client, "o-1", "p1", quantity)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "UNPROCESSABLE"
    assert "quantity" in response.json()["error"]["message"]
    assert current_stock(db, "p1") == 100
    assert reservations(db) == []


def test_reserve_at_the_configured_cap_succeeds(client: httpx.Client, db: ConnectionParams) -> None:
    stock_of(db, "p1", 100)
    assert reserve(client, "o-1", "p1", 10).status_code == 200  # MAX_RESERVE_QUANTITY=10 for this service


@pytest.mark.parametrize(
    "body",
    [
        {"orderId": "o-1", "productId": "p1"},
        {"orderId": "o-1", "productId": "p1", "quantity": 1, "userId": "u"},
        {"orderId": 1, "productId": "p1", "quantity": 1},
        {"orderId": "", "productId": "p1", "quantity": 1},
        {"orderId": "o-1", "productId": ["p1"], "quantity": 1},
        ["o-1", "p1", 1],
    ],
)
def test_reserve_malformed_body_returns_422(client: httpx.Client, db: ConnectionParams, body: object) -> None:
    stock_of(db, "p1", 5)
    response = client.post("/api/inventory/reserve", json=body)
    assert response.status_code == 422
    assert set(response.json()["error"]) == {"code", "message"}
    assert current_stock(db, "p1") == 5


def test_reserve_invalid_json_returns_400(client: httpx.Client) -> None:
    response = client.post(
        "/api/inventory/reserve", content=b'{"orderId": "o-1",', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


def test_release_restores_stock_once(client: httpx.Client, db: ConnectionParams) -> None:
    stock_of(db, "p1", 5)
    reserve(client, "o-1", "p1", 3)
    first = client.post("/api/inventory/release", json={"orderId": "o-1"})
    second = client.post("/api/inventory/release", json={"orderId": "o-1"})
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json() == {"orderId": "o-1", "status": "released"}
    assert current_stock(db, "p1") == 5
    assert reservations(db) == [("o-1", "p1", 3, "released")]


def test_release_of_unknown_order_returns_not_found_status(client: httpx.Client) -> None:
    response = client.post("/api/inventory/release", json={"orderId": "never"})
    assert response.status_code == 200
    assert response.json() == {"orderId": "never", "status": "not_found"}


@pytest.mark.parametrize("body", [{}, {"orderId": ""}, {"orderId": "o-1", "extra": 1}, {"orderId": 5}])
def test_release_malformed_body_returns_422(client: httpx.Client, body: object) -> None:
    response = client.post("/api/inventory/release", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "UNPROCESSABLE"


def test_reserve_after_release_of_same_order_returns_409_and_takes_nothing(
    client: httpx.Client, db: ConnectionParams
) -> None:
    stock_of(db, "p1", 5)
    reserve(client, "o-1", "p1", 2)
    client.post("/api/inventory/release", json={"orderId": "o-1"})
    response = reserve(client, "o-1", "p1", 2)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "RESERVATION_RELEASED"
    assert current_stock(db, "p1") == 5


def test_database_rejects_negative_stock(client: httpx.Client, db: ConnectionParams) -> None:
    stock_of(db, "p1", 1)
    with pytest.raises(psycopg.errors.CheckViolation):
        execute(db, "UPDATE inventory SET stock = stock - 2 WHERE product_id = 'p1'")
    assert current_stock(db, "p1") == 1


def test_unknown_route_and_wrong_method_use_the_error_envelope(client: httpx.Client) -> None:
    missing = client.get("/api/nothing")
    wrong = client.get("/api/inventory/reserve/x")
    method = client.delete("/api/inventory/reserve")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
    assert wrong.status_code == 404
    assert method.status_code == 405 and method.json()["error"]["code"] == "METHOD_NOT_ALLOWED"

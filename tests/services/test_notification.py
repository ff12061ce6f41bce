"""Notification over HTTP against real PostgreSQL: idempotent per order, newest first, paginated."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from local.postgres import ConnectionParams, PostgresServer
from tests.services.conftest import RunningService, run_service
from tests.support.postgres import ShopDatabase, bootstrapped_database, execute


@pytest.fixture(scope="module")
def shop(postgres: PostgresServer) -> ShopDatabase:
    return bootstrapped_database(postgres, "notification")


@pytest.fixture(scope="module")
def db(shop: ShopDatabase) -> ConnectionParams:
    """The master's params: the test arranges and inspects rows with them (the service has its own role)."""
    return shop.master


@pytest.fixture(scope="module")
def service(shop: ShopDatabase, log_dir: Path) -> Iterator[RunningService]:
    with run_service("notification", shop.role("notification"), log_dir) as svc:
        yield svc


@pytest.fixture
def client(service: RunningService, db: ConnectionParams) -> Iterator[httpx.Client]:
    execute(db, "TRUNCATE notifications")
    with service.client() as c:
        yield c


def notify(client: httpx.Client, user: str, order: str, message: str = "Your order is confirmed") -> httpx.Response:
    return client.post("/api/notifications", json={"userId": user, "message": message, "orderId": order})


def test_post_stores_and_returns_201(client: httpx.Client, db: ConnectionParams) -> None:
    response = notify(client, "u1", "o1", "Order o1 confirmed")
    assert response.status_code == 201
    body = response.json()
    assert {k: body[k] for k in ("userId", "message", "orderId")} == {
        "userId": "u1",
        "message": "Order o1 confirmed",
        "orderId": "o1",
    }
    assert isinstance(body["id"], int) and body["createdAt"]
    assert execute(db, "SELECT user_id, order_id, message FROM notifications") == [("u1", "o1", "Order o1 confirmed")]


def test_post_same_order_again_returns_200_same_body_and_stores_nothing_new(
    client: httpx.Client, db: ConnectionParams
) -> None:
    first = notify(client, "u1", "o1")
    second = notify(client, "u1", "o1")
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json() == first.json()
    assert execute(db, "SELECT count(*) FROM notifications") == [(1,)]


def test_post_same_order_with_different_content_returns_409(client: httpx.Client, db: ConnectionParams) -> None:
    notify(client, "u1", "o1", "first")
    response = notify(client, "u2", "o1", "first")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "IDEMPOTENCY_MISMATCH"
    assert execute(db, "SELECT user_id FROM notifications") == [("u1",)]


@pytest.mark.parametrize(
    "body",
    [
        {"userId": "u1", "message": "m"},
        {"userId": "", "message": "m", "orderId": "o"},
        {"userId": "u1", "message": "", "orderId": "o"},
        {"userId": 7, "message": "m", "orderId": "o"},
        {"userId": "u1", "message": "m", "orderId": "o", "channel": "sms"},
    ],
)
def test_post_malformed_body_returns_422_and_stores_nothing(
    client: httpx.Client, db: ConnectionParams, body: dict[str, object]
) -> None:
    response = client.post("/api/notifications", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "UNPROCESSABLE"
    assert execute(db, "SELECT count(*) FROM notifications") == [(0,)]


def test_list_returns_only_the_users_newest_first(client: httpx.Client) -> None:
    for i in range(3):
        notify(client, "u1", f"a{i}", f"message {i}")
    notify(client, "u2", "b0")
    response = client.get("/api/notifications", params={"userId": "u1"})
    assert response.status_code == 200
    body = response.json()
    assert [n["orderId"] for n in body["items"]] == ["a2", "a1", "a0"]
    assert {n["userId"] for n in body["items"]} == {"u1"}
    assert body["nextCursor"] is None


def test_list_paginates_with_next_cursor(client: httpx.Client) -> None:
    for i in range(5):
        notify(client, "u1", f"o{i}")
    first = client.get("/api/notifications", params={"userId": "u1", "limit": 2}).json()
    second = client.get("/api/notifications", params={"userId": "u1", "limit": 2, "cursor": first["nextCursor"]}).json()
    third = client.get("/api/notifications", params={"userId": "u1", "limit": 2, "cursor": second["nextCursor"]}).json()
    assert [n["orderId"] for n in first["items"] + second["items"] + third["items"]] == ["o4", "o3", "o2", "o1", "o0"]
    assert third["nextCursor"] is None


def test_list_for_user_without_notifications_is_empty(client: httpx.Client) -> None:
    assert client.get("/api/notifications", params={"userId": "nobody"}).json() == {"items": [], "nextCursor": None}


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"userId": ""},
        {"userId": "u1", "limit": 0},
        {"userId": "u1", "limit": 101},
        {"userId": "u1", "cursor": "!!"},
    ],
)
def test_list_bad_query_returns_422(client: httpx.Client, params: dict[str, str | int]) -> None:
    response = client.get("/api/notifications", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "UNPROCESSABLE"

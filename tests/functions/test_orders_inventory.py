"""`create_order` against the real inventory and notification services on real PostgreSQL, reached through one
base URL (a path router standing in for the Istio ingress), with the tables in moto."""

from __future__ import annotations

import itertools
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import httpx
import pytest

from functions.orders import handlers
from functions.orders.logic import order_id_for
from infra.tables import IDEMPOTENCY, ORDERS
from local.postgres import ConnectionParams
from tests.functions import shop_support as shop
from tests.support.dynamo import create_table
from tests.support.events import response_headers, response_json
from tests.support.postgres import bootstrapped_database, execute, postgres_server

pytestmark = pytest.mark.slow

ORDERS_TABLE = "orders-real"
IDEMPOTENCY_TABLE = "idempotency-real"
_products = itertools.count(1)


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """PostgreSQL, inventory and notification (`python -m services.<name>`), and the ingress in front of them."""
    root: Path = tmp_path_factory.mktemp("shop")
    with postgres_server() as server:
        database = bootstrapped_database(server, "shop", seed=False)
        params = database.master  # the test's own reads and arrangements; each service runs as its own role
        pool = {"DATABASE_POOL_SIZE": "10"}
        with (
            shop.running_service("inventory", {**database.role("inventory").env(), **pool},
                                 root / "inventory.log") as inventory,
            shop.running_service("notification", {**database.role("notification").env(), **pool},
                                 root / "notification.log") as notification,
            shop.path_router({"/api/inventory": inventory, "/api/notifications": notification}) as ingress,
        ):
            yield SimpleNamespace(params=params, ingress=ingress, notification=notification)


@pytest.fixture
def shop_env(services: SimpleNamespace, aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    ddb = boto3.client("dynamodb")
    create_table(ddb, ORDERS, ORDERS_TABLE)
    create_table(ddb, IDEMPOTENCY, IDEMPOTENCY_TABLE)
    monkeypatch.setenv("ORDERS_TABLE_NAME", ORDERS_TABLE)
    monkeypatch.setenv("IDEMPOTENCY_TABLE_NAME", IDEMPOTENCY_TABLE)
    monkeypatch.setenv("K8S_API_URL", services.ingress)
    monkeypatch.setenv("HTTP_CONNECT_TIMEOUT", "2")
    monkeypatch.setenv("HTTP_READ_TIMEOUT", "10")
    shop.service_token_env(monkeypatch)
    shop.reset_function_caches()
    yield SimpleNamespace(ddb=ddb, **vars(services))
    shop.reset_function_caches()


def new_product(params: ConnectionParams, stock: int) -> str:
    product_id = f"test-product-{next(_products)}-{uuid.uuid4().hex[:8]}"
    execute(params, "INSERT INTO inventory (product_id, stock) VALUES (%s, %s)", (product_id, stock))
    return product_id


def stock_of(params: ConnectionParams, product_id: str) -> int:
    return int(execute(params, "SELECT stock FROM inventory WHERE product_id = %s", (product_id,))[0][0])


def reservations(params: ConnectionParams, product_id: str) -> list[tuple[Any, ...]]:
    return execute(params, "SELECT order_id, status FROM reservations WHERE product_id = %s", (product_id,))


def orders_for(ddb: Any, product_id: str) -> list[dict[str, Any]]:
    items = ddb.scan(TableName=ORDERS_TABLE)["Items"]
    return [item for item in items if item["productId"]["S"] == product_id]


def create(product_id: str, quantity: int, *, user: str, key: str) -> dict[str, Any]:
    body = {"productId": product_id, "quantity": quantity}
    event = shop.order_event("POST", "/orders", user_id=user, body=body, idempotency_key=key)
    return handlers.create_order(event, shop.context("create_order"))


def test_60_concurrent_orders_for_stock_25_confirm_exactly_25(shop_env: SimpleNamespace) -> None:
    product = new_product(shop_env.params, 25)
    requests = [(f"user-{i % 6}", f"key-{i}") for i in range(60)]

    with ThreadPoolExecutor(max_workers=60) as pool:
        responses = list(pool.map(lambda req: create(product, 1, user=req[0], key=req[1]), requests))

    statuses = Counter(r["statusCode"] for r in responses)
    assert statuses == {201: 25, 409: 35}
    assert {response_json(r)["error"]["code"] for r in responses if r["statusCode"] == 409} == {"INSUFFICIENT_STOCK"}
    assert stock_of(shop_env.params, product) == 0
    confirmed = {response_json(r)["id"] for r in responses if r["statusCode"] == 201}
    assert {item["id"]["S"] for item in orders_for(shop_env.ddb, product)} == confirmed
    assert {order_id for order_id, _ in reservations(shop_env.params, product)} == confirmed


def test_same_key_twice_reserves_once_in_the_real_inventory(shop_env: SimpleNamespace) -> None:
    product = new_product(shop_env.params, 10)

    first = create(product, 3, user="user-idem", key="same")
    second = create(product, 3, user="user-idem", key="same")

    assert first["statusCode"] == second["statusCode"] == 201
    assert response_json(first) == response_json(second)
    assert stock_of(shop_env.params, product) == 7
    assert len(reservations(shop_env.params, product)) == 1
    assert len(orders_for(shop_env.ddb, product)) == 1


def test_real_inventory_statuses_map_to_ours(shop_env: SimpleNamespace) -> None:
    product = new_product(shop_env.params, 2)

    short = create(product, 3, user="user-s", key="short")
    unknown = create("no-such-product", 1, user="user-s", key="unknown")
    too_many = create(product, 10_000, user="user-s", key="cap")

    assert (short["statusCode"], response_json(short)["error"]["code"]) == (409, "INSUFFICIENT_STOCK")
    assert (unknown["statusCode"], response_json(unknown)["error"]["code"]) == (404, "PRODUCT_NOT_FOUND")
    assert (too_many["statusCode"], response_json(too_many)["error"]["code"]) == (422, "INVALID_QUANTITY")
    assert stock_of(shop_env.params, product) == 2
    assert reservations(shop_env.params, product) == []


def test_order_write_failure_releases_the_real_reservation(
    shop_env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    product = new_product(shop_env.params, 5)
    monkeypatch.setenv("ORDERS_TABLE_NAME", "missing-orders-table")
    shop.reset_function_caches()

    response = create(product, 2, user="user-c", key="compensate")

    assert response["statusCode"] == 503
    assert response_json(response)["error"]["code"] == "ORDER_NOT_STORED"
    assert stock_of(shop_env.params, product) == 5
    assert reservations(shop_env.params, product) == [(order_id_for("user-c", "compensate"), "released")]

    # Inventory never re-reserves a released order id; the spent key says so instead of pretending to succeed.
    monkeypatch.setenv("ORDERS_TABLE_NAME", ORDERS_TABLE)
    shop.reset_function_caches()
    again = create(product, 2, user="user-c", key="compensate")
    assert (again["statusCode"], response_json(again)["error"]["code"]) == (409, "ORDER_ABANDONED")
    assert stock_of(shop_env.params, product) == 5


def test_confirmed_order_is_notified_in_the_real_notification_service(shop_env: SimpleNamespace) -> None:
    product = new_product(shop_env.params, 1)
    user = f"user-n-{uuid.uuid4().hex[:6]}"

    order = response_json(create(product, 1, user=user, key="notify"))

    listed = httpx.get(f"{shop_env.notification}/api/notifications", params={"userId": user}, timeout=10).json()
    assert [(n["orderId"], n["userId"]) for n in listed["items"]] == [(order["id"], user)]


def test_inventory_behind_the_ingress_down_returns_503_and_stores_nothing(
    shop_env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    with shop.path_router({"/api/inventory": shop.closed_port_url()}) as broken_ingress:
        monkeypatch.setenv("K8S_API_URL", broken_ingress)
        shop.reset_function_caches()

        response = create("anything", 1, user="user-d", key="down")

    assert response["statusCode"] == 503
    assert response_json(response)["error"]["code"] == "INVENTORY_UNAVAILABLE"
    assert response_headers(response)["retry-after"] == "1"
    assert shop_env.ddb.scan(TableName=ORDERS_TABLE)["Count"] == 0

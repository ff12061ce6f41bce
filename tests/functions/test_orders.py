"""Order functions against moto (orders + idempotency tables from `infra.tables`) and a fake inventory/notification
server on loopback that mimics the services' HTTP contract (including the mesh's bodiless 503)."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

from functions.orders import handlers
from functions.orders.logic import order_id_for
from infra.tables import IDEMPOTENCY, ORDERS
from tests.functions import shop_support as shop
from tests.support.dynamo import create_table
from tests.support.events import response_headers, response_json

ORDERS_TABLE = "orders-test"
IDEMPOTENCY_TABLE = "idempotency-test"
ALICE = "user-alice"
BOB = "user-bob"
RESERVE = "/api/inventory/reserve"
RELEASE = "/api/inventory/release"
NOTIFY = "/api/notifications"


@pytest.fixture
def tables(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    ddb = boto3.client("dynamodb")
    create_table(ddb, ORDERS, ORDERS_TABLE)
    create_table(ddb, IDEMPOTENCY, IDEMPOTENCY_TABLE)
    monkeypatch.setenv("ORDERS_TABLE_NAME", ORDERS_TABLE)
    monkeypatch.setenv("IDEMPOTENCY_TABLE_NAME", IDEMPOTENCY_TABLE)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "orders")
    monkeypatch.setenv("HTTP_CONNECT_TIMEOUT", "0.5")
    monkeypatch.setenv("HTTP_READ_TIMEOUT", "2")
    shop.service_token_env(monkeypatch)
    shop.reset_function_caches()
    yield ddb
    shop.reset_function_caches()


@pytest.fixture
def shop_env(tables: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    """Tables in moto and the fake services (stock: widget 5, gadget 1) behind `K8S_API_URL`."""
    with shop.fake_services(shop.FakeServices(stock={"widget": 5, "gadget": 1})) as services:
        monkeypatch.setenv("K8S_API_URL", services.url)
        yield SimpleNamespace(ddb=tables, services=services)


def create(
    body: Any, *, user: str | None = ALICE, key: str | None = "key-1", headers: dict[str, str] | None = None
) -> dict[str, Any]:
    event = shop.order_event("POST", "/orders", user_id=user, body=body, idempotency_key=key)
    event["headers"].update(headers or {})
    return handlers.create_order(event, shop.context("create_order"))


def get(order_id: str, *, user: str = ALICE) -> dict[str, Any]:
    event = shop.order_event(
        "GET", f"/orders/{order_id}", user_id=user, resource="/orders/{id}", path_parameters={"id": order_id}
    )
    return handlers.get_order(event, shop.context("get_order"))


def list_page(*, user: str = ALICE, **query: str) -> dict[str, Any]:
    event = shop.order_event("GET", "/orders", user_id=user, query=query or None)
    return handlers.list_orders(event, shop.context("list_orders"))


def stored_orders(ddb: Any) -> list[dict[str, Any]]:
    return ddb.scan(TableName=ORDERS_TABLE)["Items"]  # type: ignore[no-any-return]


def error_code(response: dict[str, Any]) -> str:
    return response_json(response)["error"]["code"]  # type: ignore[no-any-return]


# ---- create: the happy path and idempotency -------------------------------------------------------------------


def test_create_reserves_once_stores_the_order_and_answers_201_with_location(shop_env: SimpleNamespace) -> None:
    response = create({"productId": "widget", "quantity": 2}, key="k-happy")

    assert response["statusCode"] == 201
    order = response_json(response)
    expected_id = order_id_for(ALICE, "k-happy")
    assert order == {
        "id": expected_id,
        "userId": ALICE,
        "productId": "widget",
        "quantity": 2,
        "status": "confirmed",
        "createdAt": order["createdAt"],
    }
    assert response_headers(response)["location"] == f"/orders/{expected_id}"
    assert shop_env.services.bodies(RESERVE) == [{"orderId": expected_id, "productId": "widget", "quantity": 2}]
    assert shop_env.services.stock["widget"] == 3
    (item,) = stored_orders(shop_env.ddb)
    assert item["id"]["S"] == expected_id and item["userId"]["S"] == ALICE and item["status"]["S"] == "confirmed"
    (note,) = shop_env.services.bodies(NOTIFY)
    assert note["userId"] == ALICE and note["orderId"] == expected_id and expected_id in note["message"]


def test_same_idempotency_key_twice_gives_one_order_and_one_reserve_call(shop_env: SimpleNamespace) -> None:
    first = create({"productId": "widget", "quantity": 1}, key="k-retry")
    second = create({"productId": "widget", "quantity": 1}, key="k-retry")

    assert first["statusCode"] == second["statusCode"] == 201
    assert response_json(first) == response_json(second)
    assert shop_env.services.paths().count(RESERVE) == 1
    assert shop_env.services.stock["widget"] == 4
    assert len(stored_orders(shop_env.ddb)) == 1


def test_same_key_with_a_different_body_returns_422_and_reserves_nothing_more(shop_env: SimpleNamespace) -> None:
    create({"productId": "widget", "quantity": 1}, key="k-reuse")

    response = create({"productId": "widget", "quantity": 3}, key="k-reuse")

    assert response["statusCode"] == 422
    assert error_code(response) == "IDEMPOTENCY_KEY_REUSED"
    assert shop_env.services.paths().count(RESERVE) == 1
    assert len(stored_orders(shop_env.ddb)) == 1


def test_two_users_with_the_same_key_get_two_orders(shop_env: SimpleNamespace) -> None:
    mine = create({"productId": "widget", "quantity": 1}, user=ALICE, key="shared-key")
    theirs = create({"productId": "widget", "quantity": 1}, user=BOB, key="shared-key")

    assert mine["statusCode"] == theirs["statusCode"] == 201
    assert response_json(mine)["id"] != response_json(theirs)["id"]
    assert len(stored_orders(shop_env.ddb)) == 2


def test_header_name_is_case_insensitive(shop_env: SimpleNamespace) -> None:
    response = create({"productId": "widget", "quantity": 1}, key=None, headers={"idempotency-key": "lower"})

    assert response["statusCode"] == 201
    assert response_json(response)["id"] == order_id_for(ALICE, "lower")


# ---- create: rejected requests reserve nothing -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "code"),
    [(None, "IDEMPOTENCY_KEY_REQUIRED"), ("", "IDEMPOTENCY_KEY_REQUIRED"), ("has space", "VALIDATION_ERROR"),
     ("k" * 256, "VALIDATION_ERROR")],
)
def test_missing_or_invalid_idempotency_key_returns_400(
    shop_env: SimpleNamespace, key: str | None, code: str
) -> None:
    response = create({"productId": "widget", "quantity": 1}, key=key)

    assert response["statusCode"] == 400
    assert error_code(response) == code
    assert shop_env.services.calls == []


def test_user_id_in_the_body_is_rejected_as_an_unknown_field(shop_env: SimpleNamespace) -> None:
    response = create({"productId": "widget", "quantity": 1, "userId": BOB})

    assert response["statusCode"] == 400
    assert "userId" in response_json(response)["error"]["message"]
    assert shop_env.services.calls == []
    assert stored_orders(shop_env.ddb) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"quantity": 1}, "productId"),
        ({"productId": "widget"}, "quantity"),
        ({"productId": "widget", "quantity": "2"}, "quantity"),
        ({"productId": "widget", "quantity": 1.5}, "quantity"),
        ({"productId": "", "quantity": 1}, "productId"),
    ],
)
def test_malformed_body_returns_400_naming_the_field(
    shop_env: SimpleNamespace, body: dict[str, Any], field: str
) -> None:
    response = create(body)

    assert response["statusCode"] == 400
    assert field in response_json(response)["error"]["message"]
    assert shop_env.services.calls == []


@pytest.mark.parametrize("quantity", [0, -3])
def test_non_positive_quantity_returns_422_without_calling_inventory(
    shop_env: SimpleNamespace, quantity: int
) -> None:
    response = create({"productId": "widget", "quantity": quantity})

    assert response["statusCode"] == 422
    assert error_code(response) == "INVALID_QUANTITY"
    assert shop_env.services.calls == []


def test_quantity_above_inventorys_cap_returns_422_and_stores_nothing(shop_env: SimpleNamespace) -> None:
    response = create({"productId": "widget", "quantity": 101})

    assert response["statusCode"] == 422
    assert error_code(response) == "INVALID_QUANTITY"
    assert shop_env.services.stock["widget"] == 5
    assert stored_orders(shop_env.ddb) == []


def test_short_stock_returns_409_with_nothing_reserved(shop_env: SimpleNamespace) -> None:
    response = create({"productId": "gadget", "quantity": 2})

    assert response["statusCode"] == 409
    assert error_code(response) == "INSUFFICIENT_STOCK"
    assert shop_env.services.stock["gadget"] == 1
    assert stored_orders(shop_env.ddb) == []
    assert NOTIFY not in shop_env.services.paths()


def test_unknown_product_returns_404(shop_env: SimpleNamespace) -> None:
    response = create({"productId": "no-such-thing", "quantity": 1})

    assert response["statusCode"] == 404
    assert error_code(response) == "PRODUCT_NOT_FOUND"
    assert stored_orders(shop_env.ddb) == []


def test_a_rejected_request_can_be_retried_with_the_same_key(shop_env: SimpleNamespace) -> None:
    assert create({"productId": "gadget", "quantity": 1}, key="k-a")["statusCode"] == 201
    assert create({"productId": "gadget", "quantity": 1}, key="k-b")["statusCode"] == 409
    shop_env.services.stock["gadget"] = 1  # restocked

    # Failures are not remembered by the idempotency layer: the same key now succeeds.
    assert create({"productId": "gadget", "quantity": 1}, key="k-b")["statusCode"] == 201


def test_missing_authorizer_context_returns_401(shop_env: SimpleNamespace) -> None:
    response = create({"productId": "widget", "quantity": 1}, user=None)

    assert response["statusCode"] == 401
    assert shop_env.services.calls == []


# ---- create: faults ---------------------------------------------------------------------------------------------


def test_inventory_down_returns_503_with_retry_after_and_no_order(
    tables: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("K8S_API_URL", shop.closed_port_url())

    response = create({"productId": "widget", "quantity": 1})

    assert response["statusCode"] == 503
    assert error_code(response) == "INVENTORY_UNAVAILABLE"
    assert int(response_headers(response)["retry-after"]) >= 1
    assert stored_orders(tables) == []


def test_mesh_503_is_retried_within_budget_then_answers_503_and_releases(shop_env: SimpleNamespace) -> None:
    shop_env.services.reserve_fault = (503, None)  # "no healthy upstream": no JSON envelope

    response = create({"productId": "widget", "quantity": 1}, key="k-mesh")

    assert response["statusCode"] == 503
    assert response_headers(response)["retry-after"] == "1"
    assert shop_env.services.paths().count(RESERVE) == 3  # the first try and two retries, no more
    # The outcome of a 5xx is unknown, so the order id is released (idempotently) before answering.
    assert shop_env.services.bodies(RELEASE) == [{"orderId": order_id_for(ALICE, "k-mesh")}]
    assert shop_env.services.stock["widget"] == 5
    assert stored_orders(shop_env.ddb) == []


def test_misrouted_ingress_404_is_an_outage_not_an_unknown_product(
    tables: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with shop.path_router({}) as ingress_without_routes:
        monkeypatch.setenv("K8S_API_URL", ingress_without_routes)

        response = create({"productId": "widget", "quantity": 1})

    assert response["statusCode"] == 503
    assert error_code(response) == "INVENTORY_UNAVAILABLE"
    assert stored_orders(tables) == []


def test_order_write_failure_after_reserving_releases_and_answers_503(
    shop_env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERS_TABLE_NAME", "orders-table-that-does-not-exist")
    shop.reset_function_caches()

    response = create({"productId": "widget", "quantity": 2}, key="k-compensate")

    assert response["statusCode"] == 503
    assert error_code(response) == "ORDER_NOT_STORED"
    order_id = order_id_for(ALICE, "k-compensate")
    assert shop_env.services.paths() == [RESERVE, RELEASE]
    assert shop_env.services.bodies(RELEASE) == [{"orderId": order_id}]
    assert shop_env.services.stock["widget"] == 5
    assert stored_orders(shop_env.ddb) == []


def test_retry_after_compensation_with_the_same_key_is_refused_as_abandoned(
    shop_env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERS_TABLE_NAME", "orders-table-that-does-not-exist")
    shop.reset_function_caches()
    assert create({"productId": "widget", "quantity": 1}, key="k-spent")["statusCode"] == 503
    monkeypatch.setenv("ORDERS_TABLE_NAME", ORDERS_TABLE)
    shop.reset_function_caches()

    again = create({"productId": "widget", "quantity": 1}, key="k-spent")
    fresh = create({"productId": "widget", "quantity": 1}, key="k-new")

    assert again["statusCode"] == 409
    assert error_code(again) == "ORDER_ABANDONED"
    assert fresh["statusCode"] == 201
    assert shop_env.services.stock["widget"] == 4
    assert len(stored_orders(shop_env.ddb)) == 1


def test_notification_failure_never_fails_the_order(shop_env: SimpleNamespace) -> None:
    shop_env.services.notify_fault = (500, {"error": {"code": "INTERNAL", "message": "boom"}})

    response = create({"productId": "widget", "quantity": 1})

    assert response["statusCode"] == 201
    assert len(stored_orders(shop_env.ddb)) == 1
    assert NOTIFY in shop_env.services.paths()


def test_slow_notification_times_out_and_the_order_still_succeeds(
    shop_env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_READ_TIMEOUT", "0.2")
    shop.reset_function_caches()
    shop_env.services.notify_delay = 1.0

    response = create({"productId": "widget", "quantity": 1})

    assert response["statusCode"] == 201
    assert len(stored_orders(shop_env.ddb)) == 1


def test_idempotency_table_missing_returns_503_and_reserves_nothing(
    shop_env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDEMPOTENCY_TABLE_NAME", "no-such-idempotency-table")
    shop.reset_function_caches()

    response = create({"productId": "widget", "quantity": 1})

    assert response["statusCode"] == 503
    assert shop_env.services.calls == []


# ---- get and list ----------------------------------------------------------------------------------------------


def test_get_own_order_returns_it(shop_env: SimpleNamespace) -> None:
    created = response_json(create({"productId": "widget", "quantity": 1}))

    response = get(created["id"])

    assert response["statusCode"] == 200
    assert response_json(response) == created


def test_get_another_users_order_returns_404(shop_env: SimpleNamespace) -> None:
    created = response_json(create({"productId": "widget", "quantity": 1}, user=ALICE))

    response = get(created["id"], user=BOB)

    assert response["statusCode"] == 404
    assert error_code(response) == "ORDER_NOT_FOUND"


@pytest.mark.parametrize("order_id", ["00000000-0000-0000-0000-000000000000", "x" * 300])
def test_get_unknown_order_returns_404(tables: Any, order_id: str) -> None:
    response = get(order_id)

    assert response["statusCode"] == 404


def test_list_pages_through_own_orders_newest_first(shop_env: SimpleNamespace) -> None:
    shop_env.services.stock["widget"] = 50
    created = [response_json(create({"productId": "widget", "quantity": 1}, key=f"k-{i}"))["id"] for i in range(5)]
    create({"productId": "widget", "quantity": 1}, user=BOB, key="k-bob")

    seen: list[str] = []
    pages = 0
    token: str | None = None
    while True:
        query = {"limit": "2", **({"nextToken": token} if token else {})}
        response = list_page(**query)
        assert response["statusCode"] == 200
        body = response_json(response)
        assert len(body["items"]) <= 2
        assert all(item["userId"] == ALICE for item in body["items"])
        seen += [item["id"] for item in body["items"]]
        pages += 1
        token = body.get("nextToken")
        if not token:
            break

    assert seen == list(reversed(created))
    assert pages >= 3


def test_list_without_orders_is_empty_and_has_no_next_token(tables: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    response = list_page(user="user-without-orders")

    assert response["statusCode"] == 200
    assert response_json(response) == {"items": []}


@pytest.mark.parametrize("limit", ["0", "101", "ten", "-1"])
def test_list_bad_limit_returns_400(tables: Any, limit: str) -> None:
    response = list_page(limit=limit)

    assert response["statusCode"] == 400
    assert "limit" in response_json(response)["error"]["message"]


def test_list_rejects_garbage_and_other_users_next_tokens(shop_env: SimpleNamespace) -> None:
    for i in range(3):
        create({"productId": "widget", "quantity": 1}, user=BOB, key=f"b-{i}")
    bobs_token = response_json(list_page(user=BOB, limit="1"))["nextToken"]

    assert list_page(nextToken="not-a-token!")["statusCode"] == 400
    assert list_page(nextToken=bobs_token)["statusCode"] == 400
    assert list_page(user=BOB, nextToken=bobs_token)["statusCode"] == 200


def test_list_without_authorizer_context_returns_401(tables: Any) -> None:
    event = shop.order_event("GET", "/orders", user_id=None)

    response = handlers.list_orders(event, shop.context("list_orders"))

    assert response["statusCode"] == 401

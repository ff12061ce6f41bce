"""Order logic with in-memory fakes (no events, no AWS, no HTTP), and the HTTP adapter's failure classification."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from functions.common.errors import ValidationFailed
from functions.orders import logic
from functions.orders.adapters import HttpInventory, build_session
from functions.orders.errors import InsufficientStock, InventoryUnavailable, OrderNotStored
from functions.orders.models import Order, PlaceOrder, Reservation
from tests.functions import shop_support as shop


@dataclass
class FakeInventory:
    fail_reserve: Exception | None = None
    fail_release: Exception | None = None
    calls: list[tuple[str, str]] = field(default_factory=list)

    def reserve(self, *, order_id: str, product_id: str, quantity: int) -> Reservation:
        self.calls.append(("reserve", order_id))
        if self.fail_reserve:
            raise self.fail_reserve
        return Reservation(orderId=order_id, productId=product_id, quantity=quantity, stock=10)

    def release(self, *, order_id: str) -> None:
        self.calls.append(("release", order_id))
        if self.fail_release:
            raise self.fail_release


@dataclass
class FakeOrders:
    fail: bool = False
    items: dict[str, Order] = field(default_factory=dict)

    def add(self, order: Order) -> Order:
        if self.fail:
            raise RuntimeError("table is gone")
        return self.items.setdefault(order.id, order)

    def get(self, order_id: str) -> Order | None:
        return self.items.get(order_id)

    def list_for_user(self, user_id: str, *, limit: int, start: Any) -> tuple[list[Order], Any]:
        mine = sorted((o for o in self.items.values() if o.userId == user_id), key=lambda o: o.createdAt, reverse=True)
        return mine[:limit], None


@dataclass
class FakeNotifier:
    fail: bool = False
    sent: list[str] = field(default_factory=list)

    def notify(self, *, user_id: str, message: str, order_id: str) -> None:
        if self.fail:
            raise ConnectionError("notification service is down")
        self.sent.append(order_id)


COMMAND = PlaceOrder(userId="u1", idempotencyKey="k1", productId="p1", quantity=2)
ORDER_ID = logic.order_id_for("u1", "k1")


def test_order_id_is_stable_per_user_and_key() -> None:
    assert logic.order_id_for("u1", "k1") == ORDER_ID
    assert logic.order_id_for("u2", "k1") != ORDER_ID
    assert logic.order_id_for("u1", "k2") != ORDER_ID
    # The separator keeps ("ab", "c") and ("a", "bc") apart.
    assert logic.order_id_for("ab", "c") != logic.order_id_for("a", "bc")


def test_place_order_reserves_stores_and_notifies() -> None:
    inventory, orders, notifier = FakeInventory(), FakeOrders(), FakeNotifier()

    order = logic.place_order(COMMAND, inventory=inventory, orders=orders, notifier=notifier)

    assert order.id == ORDER_ID and order.status == "confirmed"
    assert inventory.calls == [("reserve", ORDER_ID)]
    assert orders.items == {ORDER_ID: order}
    assert notifier.sent == [ORDER_ID]


def test_refused_reservation_stores_nothing_and_releases_nothing() -> None:
    inventory, orders = FakeInventory(fail_reserve=InsufficientStock("short")), FakeOrders()

    with pytest.raises(InsufficientStock):
        logic.place_order(COMMAND, inventory=inventory, orders=orders, notifier=FakeNotifier())

    assert inventory.calls == [("reserve", ORDER_ID)]
    assert orders.items == {}


def test_reserve_in_doubt_is_released_before_answering() -> None:
    inventory = FakeInventory(fail_reserve=InventoryUnavailable("read timeout", in_doubt=True))

    with pytest.raises(InventoryUnavailable):
        logic.place_order(COMMAND, inventory=inventory, orders=FakeOrders(), notifier=FakeNotifier())

    assert inventory.calls == [("reserve", ORDER_ID), ("release", ORDER_ID)]


def test_reserve_never_sent_is_not_released() -> None:
    inventory = FakeInventory(fail_reserve=InventoryUnavailable("refused", in_doubt=False))

    with pytest.raises(InventoryUnavailable):
        logic.place_order(COMMAND, inventory=inventory, orders=FakeOrders(), notifier=FakeNotifier())

    assert inventory.calls == [("reserve", ORDER_ID)]


def test_failed_write_releases_and_a_failed_release_does_not_hide_the_error() -> None:
    inventory = FakeInventory(fail_release=ConnectionError("inventory went away"))
    notifier = FakeNotifier()

    with pytest.raises(OrderNotStored) as raised:
        logic.place_order(COMMAND, inventory=inventory, orders=FakeOrders(fail=True), notifier=notifier)

    assert inventory.calls == [("reserve", ORDER_ID), ("release", ORDER_ID)]
    assert raised.value.status == 503 and raised.value.retry_after >= 1
    assert notifier.sent == []


def test_notification_failure_is_swallowed() -> None:
    orders = FakeOrders()

    order = logic.place_order(COMMAND, inventory=FakeInventory(), orders=orders, notifier=FakeNotifier(fail=True))

    assert orders.items == {order.id: order}


def test_a_replayed_write_returns_the_first_stored_order() -> None:
    orders = FakeOrders()
    first = logic.place_order(COMMAND, inventory=FakeInventory(), orders=orders, notifier=FakeNotifier(),
                              created_at="2026-01-01T00:00:00.000000Z")

    again = logic.place_order(COMMAND, inventory=FakeInventory(), orders=orders, notifier=FakeNotifier(),
                              created_at="2026-01-02T00:00:00.000000Z")

    assert again == first


def test_page_tokens_round_trip_and_are_bound_to_their_user() -> None:
    key = {"id": "o1", "userId": "u1", "createdAt": "2026-01-01T00:00:00.000000Z"}
    token = logic.encode_page_token(key)

    assert logic.decode_page_token(token, user_id="u1") == key
    with pytest.raises(ValidationFailed):
        logic.decode_page_token(token, user_id="u2")
    with pytest.raises(ValidationFailed):
        logic.decode_page_token(logic.encode_page_token({"id": "o1"}), user_id="u1")


def test_http_inventory_classifies_a_refused_connection_as_never_sent() -> None:
    url = shop.closed_port_url()
    inventory = HttpInventory(session=build_session(url), base_url=url, connect_timeout=0.5, read_timeout=0.5)

    with pytest.raises(InventoryUnavailable) as raised:
        inventory.reserve(order_id="o1", product_id="p1", quantity=1)

    assert raised.value.in_doubt is False


def test_http_inventory_classifies_a_read_timeout_as_in_doubt() -> None:
    services = shop.FakeServices(stock={"p1": 5})
    with shop.fake_services(services):
        inventory = HttpInventory(
            session=build_session(services.url), base_url=services.url, connect_timeout=0.5, read_timeout=0.2
        )
        services.reserve_delay = 0.6  # longer than the read timeout: inventory may have applied it

        with pytest.raises(InventoryUnavailable) as raised:
            inventory.reserve(order_id="o1", product_id="p1", quantity=1)

    assert raised.value.in_doubt is True
    # The first attempt and one read retry: reserve is idempotent per order id, so the stock moved once.
    assert services.paths().count("/api/inventory/reserve") == 2
    assert services.stock["p1"] == 4

"""What the order logic needs from the outside world (implemented by `adapters.py`, fakes in tests)."""

from __future__ import annotations

from typing import Any, Protocol

from functions.orders.models import Order, Reservation

PageKey = dict[str, Any]


class Inventory(Protocol):
    def reserve(self, *, order_id: str, product_id: str, quantity: int) -> Reservation:
        """Reserve stock for `order_id` (idempotent per order id); raise a domain error when refused."""
        ...

    def release(self, *, order_id: str) -> None:
        """Undo `order_id`'s reservation (idempotent); raise if inventory could not be told."""
        ...


class Notifier(Protocol):
    def notify(self, *, user_id: str, message: str, order_id: str) -> None:
        """Tell the user (idempotent per order id); raise on failure, the caller decides whether it matters."""
        ...


class OrderRepository(Protocol):
    def add(self, order: Order) -> Order:
        """Store `order`; if it already exists (a retry after a crash), return the stored one unchanged."""
        ...

    def get(self, order_id: str) -> Order | None:
        """The order with this id, whoever owns it."""
        ...

    def list_for_user(self, user_id: str, *, limit: int, start: PageKey | None) -> tuple[list[Order], PageKey | None]:
        """Up to `limit` of the user's orders, newest first, from `start`; and where the next page starts."""
        ...

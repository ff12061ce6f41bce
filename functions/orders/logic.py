"""Order logic: plain functions over models and ports (no events, no boto3, no HTTP)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from functions.common import page_tokens
from functions.common.errors import ValidationFailed
from functions.common.logging import get_logger
from functions.orders.errors import InvalidQuantity, InventoryUnavailable, OrderNotFound, OrderNotStored
from functions.orders.models import DEFAULT_PAGE, MAX_PAGE, Order, OrderPage, PlaceOrder
from functions.orders.ports import Inventory, Notifier, OrderRepository, PageKey

logger = get_logger("orders")

# Fixed namespace: the same (user, Idempotency-Key) always names the same order, in every container, forever.
ORDER_NAMESPACE = uuid.UUID("6f1c8e8a-3b0e-5d7c-9a51-2f4d8f0c6b1e")
# Longest order id a path parameter can hold before it cannot be one of ours (uuid text is 36).
_MAX_ID = 64


def order_id_for(user_id: str, idempotency_key: str) -> str:
    """The order id of `user_id`'s request with `idempotency_key`.

    Deterministic, so a retry that re-runs the flow (the first attempt crashed mid-way) sends inventory the same
    order id, and inventory's own per-order idempotency keeps it from reserving twice.
    """
    return str(uuid.uuid5(ORDER_NAMESPACE, f"{user_id}\n{idempotency_key}"))


def _now() -> str:
    # Microseconds and a fixed offset keep the string sortable: it is the `byUser` index's range key.
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def place_order(
    command: PlaceOrder,
    *,
    inventory: Inventory,
    orders: OrderRepository,
    notifier: Notifier,
    created_at: str | None = None,
) -> Order:
    """Reserve once, store the order, notify best effort; compensate the reservation if the order is not stored."""
    if command.quantity < 1:
        raise InvalidQuantity("quantity must be a positive integer", field="quantity")
    order_id = order_id_for(command.userId, command.idempotencyKey)
    log = {"order_id": order_id, "product_id": command.productId, "quantity": command.quantity}

    try:
        inventory.reserve(order_id=order_id, product_id=command.productId, quantity=command.quantity)
    except InventoryUnavailable as exc:
        if exc.in_doubt:
            # The request may have reached inventory before it failed: undo whatever it may have reserved.
            _release(inventory, order_id, reason="reserve outcome unknown")
        raise

    order = Order(
        id=order_id,
        userId=command.userId,
        productId=command.productId,
        quantity=command.quantity,
        status="confirmed",
        createdAt=created_at or _now(),
    )
    try:
        stored = orders.add(order)
    except Exception:
        logger.exception("order write failed after reserving; releasing", extra=log)
        _release(inventory, order_id, reason="order not stored")
        raise OrderNotStored(
            "the order could not be stored and its reservation was released; send it again with a new Idempotency-Key",
            retry_after=1,
        ) from None
    logger.info("order confirmed", extra=log)

    try:
        notifier.notify(
            user_id=stored.userId,
            message=f"Order {stored.id} confirmed: {stored.quantity} x {stored.productId}",
            order_id=stored.id,
        )
    except Exception as exc:
        # Best effort by design: the order stands, the notification can be missed.
        logger.warning("notification failed", extra={**log, "error": type(exc).__name__})
    return stored


def _release(inventory: Inventory, order_id: str, *, reason: str) -> None:
    try:
        inventory.release(order_id=order_id)
        logger.info("reservation released", extra={"order_id": order_id, "reason": reason})
    except Exception as exc:
        # Nothing more this request can do; the order id is deterministic, so the client's retry with the same
        # Idempotency-Key reuses the reservation instead of leaking a second one.
        logger.error(
            "could not release reservation",
            extra={"order_id": order_id, "reason": reason, "error": type(exc).__name__},
        )


def get_order(order_id: str, *, user_id: str, orders: OrderRepository) -> Order:
    """The caller's order; someone else's order is indistinguishable from a missing one (404)."""
    order = orders.get(order_id) if 0 < len(order_id) <= _MAX_ID else None
    if order is None or order.userId != user_id:
        raise OrderNotFound("order not found")
    return order


def encode_page_token(key: PageKey) -> str:
    """An opaque `nextToken` for `key` (DynamoDB's LastEvaluatedKey, plain strings)."""
    return page_tokens.encode(key)


def decode_page_token(token: str, *, user_id: str) -> PageKey:
    """The start key in `token`; 400 if it is not one of ours or belongs to another user."""
    key = page_tokens.decode(token)
    if (
        not isinstance(key, dict)
        or set(key) != {"id", "userId", "createdAt"}
        or not all(isinstance(v, str) for v in key.values())
        or key["userId"] != user_id
    ):
        raise ValidationFailed("nextToken is not valid", field="nextToken")
    return key


def parse_limit(raw: str | None) -> int:
    """`limit` query parameter: 1..MAX_PAGE, default DEFAULT_PAGE."""
    if raw is None:  # an empty `limit=` is a bad value, not an absent one (as GET /todos answers)
        return DEFAULT_PAGE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise ValidationFailed(f"limit must be an integer from 1 to {MAX_PAGE}", field="limit")
    return int(raw)


def list_orders(
    *, user_id: str, limit: int, next_token: str | None, orders: OrderRepository
) -> OrderPage:
    """One page of the caller's orders, newest first."""
    start = decode_page_token(next_token, user_id=user_id) if next_token is not None else None
    items, last = orders.list_for_user(user_id, limit=limit, start=start)
    return OrderPage(items=items, nextToken=encode_page_token(last) if last else None)

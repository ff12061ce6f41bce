"""All inventory SQL. Reserve and release are single atomic statements; reads only classify failures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import psycopg
from psycopg import AsyncConnection

from services.common.errors import Conflict, NotFound


class ProductNotFound(NotFound):
    code = "PRODUCT_NOT_FOUND"


class InsufficientStock(Conflict):
    code = "INSUFFICIENT_STOCK"


class IdempotencyMismatch(Conflict):
    code = "IDEMPOTENCY_MISMATCH"


class ReservationReleased(Conflict):
    code = "RESERVATION_RELEASED"


@dataclass(frozen=True)
class Reservation:
    order_id: str
    product_id: str
    quantity: int
    stock: int


# The decrement and the reservation row are one statement, run as its own transaction (the pool's
# connections are in autocommit), so the product row is locked only while the statement runs and no
# client round trip sits inside the lock. The UPDATE matches only with enough stock and no reservation
# for this order yet; the INSERT runs only with the UPDATE's row. Two concurrent requests with the same
# orderId can both pass NOT EXISTS (same snapshot): the second one's INSERT then waits on the first's
# unique key and fails, which aborts the whole statement - its decrement included. No ON CONFLICT here
# on purpose: that error is what keeps an orderId from ever decrementing twice.
RESERVE_SQL = """
WITH decremented AS (
    UPDATE inventory
       SET stock = stock - %(quantity)s, updated_at = now()
     WHERE product_id = %(product_id)s
       AND stock >= %(quantity)s
       AND NOT EXISTS (SELECT 1 FROM reservations WHERE order_id = %(order_id)s)
    RETURNING product_id, stock
), recorded AS (
    INSERT INTO reservations (order_id, product_id, quantity, stock_after)
    SELECT %(order_id)s, product_id, %(quantity)s, stock FROM decremented
    RETURNING order_id, product_id, quantity, stock_after
)
SELECT order_id, product_id, quantity, stock_after FROM recorded
"""

RELEASE_SQL = """
WITH released AS (
    UPDATE reservations
       SET status = 'released', released_at = now()
     WHERE order_id = %(order_id)s AND status = 'reserved'
    RETURNING product_id, quantity
), restored AS (
    UPDATE inventory AS i
       SET stock = i.stock + released.quantity, updated_at = now()
      FROM released
     WHERE i.product_id = released.product_id
    RETURNING i.stock
)
SELECT (SELECT count(*) FROM released) AS released, (SELECT count(*) FROM restored) AS restored
"""


async def get_stock(conn: AsyncConnection, *, product_id: str) -> int | None:
    cur = await conn.execute("SELECT stock FROM inventory WHERE product_id = %s", (product_id,))
    row = await cur.fetchone()
    return None if row is None else int(row[0])


async def _existing(conn: AsyncConnection, *, order_id: str) -> tuple[str, int, int, str] | None:
    cur = await conn.execute(
        "SELECT product_id, quantity, stock_after, status FROM reservations WHERE order_id = %s", (order_id,)
    )
    row = await cur.fetchone()
    return None if row is None else (row[0], int(row[1]), int(row[2]), row[3])


async def reserve(conn: AsyncConnection, *, order_id: str, product_id: str, quantity: int) -> Reservation:
    """Take `quantity` of `product_id` for `order_id`, once; a replay answers the original reservation."""
    if not conn.autocommit:
        raise ValueError("reserve needs an autocommit connection: the statement is its own transaction")
    params = {"order_id": order_id, "product_id": product_id, "quantity": quantity}
    try:
        cur = await conn.execute(RESERVE_SQL, params)
        row = await cur.fetchone()
    except psycopg.errors.UniqueViolation:
        row = None  # a concurrent request recorded this orderId first; our statement changed nothing
    if row is not None:
        return Reservation(row[0], row[1], int(row[2]), int(row[3]))
    # Nothing was taken. The reads below only decide which answer to give.
    existing = await _existing(conn, order_id=order_id)
    if existing is not None:
        stored_product, stored_quantity, stock_after, status = existing
        if (stored_product, stored_quantity) != (product_id, quantity):
            raise IdempotencyMismatch(
                f"order {order_id} already reserved {stored_quantity} of {stored_product}; "
                "a retry must send the same productId and quantity"
            )
        if status == "released":
            raise ReservationReleased(f"the reservation for order {order_id} was released; use a new orderId")
        return Reservation(order_id, stored_product, stored_quantity, stock_after)
    if await get_stock(conn, product_id=product_id) is None:
        raise ProductNotFound(f"product {product_id} does not exist")
    raise InsufficientStock(f"not enough stock of {product_id} for {quantity}")


async def release(conn: AsyncConnection, *, order_id: str) -> Literal["released", "not_found"]:
    """Give the order's units back once; releasing again (or concurrently) restores nothing more."""
    cur = await conn.execute(RELEASE_SQL, {"order_id": order_id})  # autocommit: one statement, one transaction
    row = await cur.fetchone()
    if row is not None and row[0]:
        return "released"
    return "released" if await _existing(conn, order_id=order_id) is not None else "not_found"

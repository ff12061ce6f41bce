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


# The decrement and the reservation row are one statement: the UPDATE only matches when there is
# enough stock and no reservation for this order yet, and the INSERT only runs with the UPDATE's row.
# Two concurrent requests with the same orderId can both pass NOT EXISTS (same snapshot); the second
# one's INSERT then waits on the first's unique key and does nothing, which the caller sees as
# "decremented but not recorded" and rolls back - so an orderId never decrements twice.
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
    ON CONFLICT (order_id) DO NOTHING
    RETURNING order_id, product_id, quantity, stock_after
)
SELECT (SELECT count(*) FROM decremented) AS decremented,
       r.order_id, r.product_id, r.quantity, r.stock_after
  FROM (SELECT 1) AS one
  LEFT JOIN recorded AS r ON true
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
    params = {"order_id": order_id, "product_id": product_id, "quantity": quantity}
    async with conn.transaction():
        cur = await conn.execute(RESERVE_SQL, params)
        row = await cur.fetchone()
        assert row is not None  # the statement always yields exactly one row
        if row[1] is not None:
            return Reservation(row[1], row[2], int(row[3]), int(row[4]))
        if row[0]:
            # A concurrent request recorded this orderId first: undo our decrement; answer as a replay below.
            raise psycopg.Rollback()
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
    async with conn.transaction():
        cur = await conn.execute(RELEASE_SQL, {"order_id": order_id})
        row = await cur.fetchone()
    if row is not None and row[0]:
        return "released"
    return "released" if await _existing(conn, order_id=order_id) is not None else "not_found"

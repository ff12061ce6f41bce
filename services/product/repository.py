"""All product SQL: keyset pagination by id."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from psycopg import AsyncConnection


@dataclass(frozen=True)
class ProductRow:
    id: str
    name: str
    price: Decimal
    currency: str


async def list_products(conn: AsyncConnection, *, limit: int, after: str | None) -> tuple[list[ProductRow], bool]:
    """One page of products ordered by id, and whether another page follows."""
    cur = await conn.execute(
        """
        SELECT id, name, price, currency FROM products
         WHERE %(after)s::text IS NULL OR id > %(after)s::text
         ORDER BY id
         LIMIT %(limit)s
        """,
        {"after": after, "limit": limit + 1},
    )
    rows = [ProductRow(r[0], r[1], r[2], r[3].strip()) for r in await cur.fetchall()]
    return rows[:limit], len(rows) > limit


async def get_product(conn: AsyncConnection, *, product_id: str) -> ProductRow | None:
    cur = await conn.execute("SELECT id, name, price, currency FROM products WHERE id = %s", (product_id,))
    r = await cur.fetchone()
    return None if r is None else ProductRow(r[0], r[1], r[2], r[3].strip())

"""All notification SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection

from services.common.errors import Conflict


class IdempotencyMismatch(Conflict):
    code = "IDEMPOTENCY_MISMATCH"


@dataclass(frozen=True)
class NotificationRow:
    id: int
    user_id: str
    message: str
    order_id: str
    created_at: datetime


_COLUMNS = "id, user_id, message, order_id, created_at"


def _row(r: tuple) -> NotificationRow:  # type: ignore[type-arg]
    return NotificationRow(int(r[0]), r[1], r[2], r[3], r[4])


async def create(conn: AsyncConnection, *, user_id: str, message: str, order_id: str) -> tuple[NotificationRow, bool]:
    """Store the order's notification unless it exists; returns it and whether it was created now."""
    cur = await conn.execute(
        f"""
        INSERT INTO notifications (user_id, message, order_id) VALUES (%s, %s, %s)
        ON CONFLICT (order_id) DO NOTHING
        RETURNING {_COLUMNS}
        """,
        (user_id, message, order_id),
    )
    inserted = await cur.fetchone()
    if inserted is not None:
        return _row(inserted), True
    # Autocommit: this is a new statement with a new snapshot, so a concurrent first insert is visible.
    cur = await conn.execute(f"SELECT {_COLUMNS} FROM notifications WHERE order_id = %s", (order_id,))
    existing = _row(await cur.fetchone())  # type: ignore[arg-type]
    if (existing.user_id, existing.message) != (user_id, message):
        raise IdempotencyMismatch(f"order {order_id} already has a different notification")
    return existing, False


async def list_for_user(
    conn: AsyncConnection, *, user_id: str, limit: int, before: int | None
) -> tuple[list[NotificationRow], bool]:
    """One page of the user's notifications, newest first, and whether another page follows."""
    cur = await conn.execute(
        f"""
        SELECT {_COLUMNS} FROM notifications
         WHERE user_id = %(user_id)s AND (%(before)s::bigint IS NULL OR id < %(before)s::bigint)
         ORDER BY id DESC
         LIMIT %(limit)s
        """,
        {"user_id": user_id, "before": before, "limit": limit + 1},
    )
    rows = [_row(r) for r in await cur.fetchall()]
    return rows[:limit], len(rows) > limit

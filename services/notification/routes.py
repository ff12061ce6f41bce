"""Notification HTTP routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from services.common.app import Connection
from services.common.errors import error_responses
from services.common.pagination import Cursor, Limit, decode_cursor, encode_cursor
from services.notification import repository
from services.notification.models import Notification, NotificationCreate, NotificationPage

router = APIRouter(prefix="/api/notifications", tags=["notifications"])


def _public(row: repository.NotificationRow) -> Notification:
    return Notification(
        id=row.id, userId=row.user_id, message=row.message, orderId=row.order_id, createdAt=row.created_at
    )


@router.post(
    "",
    response_model=Notification,
    status_code=201,
    responses={
        200: {"description": "Already stored for this orderId (same body)", "model": Notification},
        **error_responses(400, 409, 422, 503),
    },
)
async def create_notification(body: NotificationCreate, response: Response, conn: Connection) -> Notification:
    """Store a notification for an order; the same orderId again answers 200 with the stored one."""
    row, created = await repository.create(conn, user_id=body.userId, message=body.message, order_id=body.orderId)
    if not created:
        response.status_code = 200
    return _public(row)


@router.get("", response_model=NotificationPage, responses=error_responses(422, 503))
async def list_notifications(
    conn: Connection,
    userId: Annotated[str, Query(min_length=1, max_length=128)],
    limit: Limit = 20,
    cursor: Cursor = None,
) -> NotificationPage:
    """A user's notifications, newest first, a page at a time."""
    before = decode_cursor(cursor, int) if cursor else None
    rows, more = await repository.list_for_user(conn, user_id=userId, limit=limit, before=before)
    return NotificationPage(items=[_public(r) for r in rows], nextCursor=encode_cursor(rows[-1].id) if more else None)

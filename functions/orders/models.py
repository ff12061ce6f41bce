"""Request, command and response models of the orders API.

Every model is `defer_build`: its validator is built on first use, not at import, so `get_order` and `list_orders`
never pay at cold start for the create flow's request, command and reservation models.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

# RFC 9110 token-ish: printable ASCII without spaces; long enough for a UUID or a client's own scheme.
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
MAX_PAGE = 100
DEFAULT_PAGE = 20

OrderStatus = Literal["confirmed"]


class CreateOrderRequest(BaseModel):
    """`POST /orders` body. No `userId`: the user comes from the authorizer, so a body field is rejected."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    # No NUL: inventory keeps ids in PostgreSQL text, which cannot hold it (the document says the same).
    productId: str = Field(min_length=1, max_length=128, pattern=r"^[^\x00]+$")
    quantity: StrictInt


class PlaceOrder(BaseModel):
    """The idempotent command: who, with which key, wants what (also the payload Powertools hashes)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    userId: str
    idempotencyKey: str
    productId: str
    quantity: int


class Order(BaseModel):
    """A stored order, and the body of `POST /orders` and `GET /orders/{id}`."""

    model_config = ConfigDict(defer_build=True)

    id: str
    userId: str
    productId: str
    quantity: int
    status: OrderStatus
    createdAt: str


class OrderPage(BaseModel):
    """`GET /orders` answer: newest first; `nextToken` is absent on the last page."""

    model_config = ConfigDict(defer_build=True)

    items: list[Order]
    nextToken: str | None = None


class Reservation(BaseModel):
    """Inventory's answer to a reservation."""

    model_config = ConfigDict(defer_build=True)

    orderId: str
    productId: str
    quantity: int
    stock: int

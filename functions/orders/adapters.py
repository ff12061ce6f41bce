"""The orders group's edges: the DynamoDB orders table, and the mesh's inventory and notification services over
HTTP (through the Istio ingress).

Orders table: hash key `id`, GSI `byUser` on userId/createdAt (see `infra.tables.ORDERS`).

HTTP: one `requests.Session` per container (connection reuse across invocations). Every call this module makes is
idempotent by design (reserve per orderId, release per orderId, notification per orderId), so POST is retried, but
within a small budget: only connect failures, a single read failure and 502/503/504 (the mesh's "no healthy
upstream" / "circuit open"). Notifications get a shorter timeout and a single retry: they must never hold up an
order.

requests, urllib3 and botocore are imported inside the functions that use them, never at module level: only
`create_order` talks HTTP (`get_order` and `list_orders` would pay ~50 ms of cold start for nothing), and
botocore's `ClientError` is caught through `aws.client_error()`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from functions.common import aws
from functions.orders.errors import (
    IdempotencyKeyReused,
    InsufficientStock,
    InvalidQuantity,
    InventoryUnavailable,
    OrderAbandoned,
    ProductNotFound,
)
from functions.orders.models import Order, Reservation
from functions.orders.ports import PageKey

if TYPE_CHECKING:
    import requests
    from urllib3.util.retry import Retry

RESERVE_PATH = "/api/inventory/reserve"
RELEASE_PATH = "/api/inventory/release"
NOTIFICATIONS_PATH = "/api/notifications"
# Inventory's codes for a replayed orderId it will not honour (see services/inventory/repository.py).
RESERVATION_RELEASED = "RESERVATION_RELEASED"
IDEMPOTENCY_MISMATCH = "IDEMPOTENCY_MISMATCH"
# Only inventory's own 404 means "no such product"; any other 404 (a misrouted ingress) is an outage.
PRODUCT_NOT_FOUND = "PRODUCT_NOT_FOUND"
RETRY_STATUSES = (502, 503, 504)
# A notification is worth at most this long a wait per attempt.
NOTIFY_READ_TIMEOUT = 1.0
MAX_RETRY_AFTER = 30


def _retry(total: int, *, read: int) -> Retry:
    from urllib3.util.retry import Retry

    return Retry(
        total=total,
        connect=total,
        read=read,
        status=total,
        other=0,
        allowed_methods=frozenset({"GET", "POST"}),  # POST here is idempotent (see module docstring)
        status_forcelist=RETRY_STATUSES,
        backoff_factor=0.05,
        backoff_max=0.5,
        # A mesh's Retry-After is for the client; our own budget stays bounded.
        respect_retry_after_header=False,
        raise_on_status=False,
    )


def build_session(base_url: str) -> requests.Session:
    """The shared session: inventory calls retried twice, notifications once (longest mount prefix wins)."""
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    session.mount(base_url + "/", HTTPAdapter(max_retries=_retry(2, read=1), pool_maxsize=10))
    session.mount(base_url + NOTIFICATIONS_PATH, HTTPAdapter(max_retries=_retry(1, read=0), pool_maxsize=10))
    session.headers["Accept"] = "application/json"
    return session


def _error(response: requests.Response) -> tuple[str | None, str]:
    try:
        body = response.json()
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            return error.get("code"), str(error.get("message") or "")
    except ValueError:
        pass
    return None, ""


def _retry_after(response: requests.Response) -> int:
    raw = response.headers.get("Retry-After", "")
    return min(int(raw), MAX_RETRY_AFTER) if raw.isdigit() and int(raw) > 0 else 1


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the failure happened before a byte reached the server (nothing can have been reserved)."""
    import requests
    from urllib3.exceptions import NewConnectionError

    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason: Any = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the last failure
    return isinstance(reason, NewConnectionError)


class HttpInventory:
    """`functions.orders.ports.Inventory` over the mesh's inventory service."""

    def __init__(self, *, session: requests.Session, base_url: str, connect_timeout: float, read_timeout: float):
        self._session = session
        self._base = base_url
        self._timeout = (connect_timeout, read_timeout)

    def reserve(self, *, order_id: str, product_id: str, quantity: int) -> Reservation:
        import requests

        try:
            response = self._session.post(
                self._base + RESERVE_PATH,
                json={"orderId": order_id, "productId": product_id, "quantity": quantity},
                timeout=self._timeout,
            )
        except requests.RequestException as exc:
            raise InventoryUnavailable(
                f"inventory is unreachable ({type(exc).__name__})", in_doubt=not _never_sent(exc)
            ) from None
        if response.ok:
            return Reservation.model_validate(response.json())
        code, message = _error(response)
        if response.status_code == 409 and code == RESERVATION_RELEASED:
            # The order id is deterministic per Idempotency-Key, and inventory never re-reserves a released one.
            raise OrderAbandoned(
                "an earlier attempt with this Idempotency-Key was rolled back; send the order with a new key",
                field="Idempotency-Key",
            )
        if response.status_code == 409 and code == IDEMPOTENCY_MISMATCH:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used for a different order", field="Idempotency-Key"
            )
        if response.status_code == 409:
            raise InsufficientStock(message or "not enough stock", field="quantity")
        if response.status_code == 404 and code == PRODUCT_NOT_FOUND:
            raise ProductNotFound(message or "unknown product", field="productId")
        if response.status_code in (400, 422):
            raise InvalidQuantity(message or "quantity is not acceptable", field="quantity")
        raise InventoryUnavailable(
            f"inventory answered {response.status_code}{f' {code}' if code else ''}",
            retry_after=_retry_after(response),
            # A 5xx may come after the reservation was applied; a 4xx we do not understand was refused upfront.
            in_doubt=response.status_code >= 500,
        )

    def release(self, *, order_id: str) -> None:
        response = self._session.post(self._base + RELEASE_PATH, json={"orderId": order_id}, timeout=self._timeout)
        response.raise_for_status()


class HttpNotifier:
    """`functions.orders.ports.Notifier` over the mesh's notification service."""

    def __init__(self, *, session: requests.Session, base_url: str, connect_timeout: float, read_timeout: float):
        self._session = session
        self._url = base_url + NOTIFICATIONS_PATH
        self._timeout = (connect_timeout, min(read_timeout, NOTIFY_READ_TIMEOUT))

    def notify(self, *, user_id: str, message: str, order_id: str) -> None:
        response = self._session.post(
            self._url, json={"userId": user_id, "message": message, "orderId": order_id}, timeout=self._timeout
        )
        response.raise_for_status()


# ---- the orders table ----

BY_USER = "byUser"


def _item(order: Order) -> dict[str, Any]:
    return {
        "id": {"S": order.id},
        "userId": {"S": order.userId},
        "productId": {"S": order.productId},
        "quantity": {"N": str(order.quantity)},
        "status": {"S": order.status},
        "createdAt": {"S": order.createdAt},
    }


def _order(item: dict[str, Any]) -> Order:
    return Order(
        id=item["id"]["S"],
        userId=item["userId"]["S"],
        productId=item["productId"]["S"],
        quantity=int(item["quantity"]["N"]),
        status=item["status"]["S"],
        createdAt=item["createdAt"]["S"],
    )


class DynamoOrderRepository:
    def __init__(self, *, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def add(self, order: Order) -> Order:
        try:
            self._client.put_item(
                TableName=self._table, Item=_item(order), ConditionExpression="attribute_not_exists(id)"
            )
        except aws.client_error() as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            # Same deterministic id: a previous attempt stored it before crashing. Keep the first write.
            existing = self.get(order.id)
            if existing is None or existing.userId != order.userId:
                raise
            return existing
        return order

    def get(self, order_id: str) -> Order | None:
        found = self._client.get_item(TableName=self._table, Key={"id": {"S": order_id}}).get("Item")
        return _order(found) if found else None

    def list_for_user(self, user_id: str, *, limit: int, start: PageKey | None) -> tuple[list[Order], PageKey | None]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": BY_USER,
            "KeyConditionExpression": "userId = :u",
            "ExpressionAttributeValues": {":u": {"S": user_id}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if start:
            kwargs["ExclusiveStartKey"] = {name: {"S": value} for name, value in start.items()}
        page = self._client.query(**kwargs)
        last = page.get("LastEvaluatedKey")
        next_key = {name: value["S"] for name, value in last.items()} if last else None
        return [_order(item) for item in page.get("Items", [])], next_key

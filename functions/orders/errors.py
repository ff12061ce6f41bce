"""The orders API's own error codes (statuses come from the shared classes in `functions.common.errors`)."""

from __future__ import annotations

from functions.common.errors import Conflict, NotFound, ServiceUnavailable, Unprocessable, ValidationFailed


class InsufficientStock(Conflict):
    code = "INSUFFICIENT_STOCK"


class ProductNotFound(NotFound):
    code = "PRODUCT_NOT_FOUND"


class OrderNotFound(NotFound):
    code = "ORDER_NOT_FOUND"


class InvalidQuantity(Unprocessable):
    code = "INVALID_QUANTITY"


class MissingIdempotencyKey(ValidationFailed):
    code = "IDEMPOTENCY_KEY_REQUIRED"


class IdempotencyKeyReused(Unprocessable):
    """The key was already used for a different order (IETF idempotency-key draft: 422)."""

    code = "IDEMPOTENCY_KEY_REUSED"


class RequestInProgress(Conflict):
    """The first request with this key is still running (IETF idempotency-key draft: 409)."""

    code = "REQUEST_IN_PROGRESS"


class OrderAbandoned(Conflict):
    """An earlier attempt with this Idempotency-Key reserved stock and was rolled back; the key is spent."""

    code = "ORDER_ABANDONED"


class InventoryUnavailable(ServiceUnavailable):
    """Inventory could not be reached or answered 5xx; `in_doubt` when the request may have been applied."""

    code = "INVENTORY_UNAVAILABLE"

    def __init__(self, message: str, *, retry_after: int = 1, in_doubt: bool = True) -> None:
        super().__init__(message, retry_after=retry_after)
        self.in_doubt = in_doubt


class OrderNotStored(ServiceUnavailable):
    """Stock was reserved but the order could not be written; the reservation was released (compensated)."""

    code = "ORDER_NOT_STORED"

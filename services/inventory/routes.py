"""Inventory HTTP routes: short handlers over the repository."""

from __future__ import annotations

from fastapi import APIRouter, Request

from services.common.app import Connection
from services.common.errors import Unprocessable, error_responses
from services.inventory import repository
from services.inventory.models import ReleaseRequest, ReleaseResult, Reservation, ReserveRequest, StockLevel

router = APIRouter(prefix="/api/inventory", tags=["inventory"])


@router.get("/{productId}", response_model=StockLevel, responses=error_responses(404, 503))
async def get_stock(productId: str, conn: Connection) -> StockLevel:
    """Current stock of one product."""
    stock = await repository.get_stock(conn, product_id=productId)
    if stock is None:
        raise repository.ProductNotFound(f"product {productId} does not exist")
    return StockLevel(productId=productId, stock=stock)


@router.post("/reserve", response_model=Reservation, responses=error_responses(400, 404, 409, 422, 503))
async def reserve(body: ReserveRequest, request: Request, conn: Connection) -> Reservation:
    """Reserve stock for an order atomically; the same orderId again answers the same without reserving twice."""
    cap = request.app.state.settings.MAX_RESERVE_QUANTITY
    if body.quantity > cap:
        raise Unprocessable(f"quantity: must be at most {cap}")
    taken = await repository.reserve(
        conn, order_id=body.orderId, product_id=body.productId, quantity=body.quantity
    )
    return Reservation(orderId=taken.order_id, productId=taken.product_id, quantity=taken.quantity, stock=taken.stock)


@router.post("/release", response_model=ReleaseResult, responses=error_responses(400, 422, 503))
async def release(body: ReleaseRequest, conn: Connection) -> ReleaseResult:
    """Undo an order's reservation (idempotent); `not_found` when the order never reserved anything."""
    status = await repository.release(conn, order_id=body.orderId)
    return ReleaseResult(orderId=body.orderId, status=status)

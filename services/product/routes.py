"""Product HTTP routes."""

from __future__ import annotations

from fastapi import APIRouter

from services.common.app import Connection
from services.common.errors import NotFound, error_responses
from services.common.pagination import Cursor, Limit, decode_cursor, encode_cursor
from services.product import repository
from services.product.models import Product, ProductPage

router = APIRouter(prefix="/api/products", tags=["products"])


def _public(row: repository.ProductRow) -> Product:
    return Product(id=row.id, name=row.name, price=f"{row.price:.2f}", currency=row.currency)


@router.get("", response_model=ProductPage, responses=error_responses(422, 503))
async def list_products(conn: Connection, limit: Limit = 20, cursor: Cursor = None) -> ProductPage:
    """The catalogue, ordered by id, a page at a time."""
    after = decode_cursor(cursor, str) if cursor else None
    rows, more = await repository.list_products(conn, limit=limit, after=after)
    return ProductPage(items=[_public(r) for r in rows], nextCursor=encode_cursor(rows[-1].id) if more else None)


@router.get("/{id}", response_model=Product, responses=error_responses(404, 503))
async def get_product(id: str, conn: Connection) -> Product:
    """One product."""
    row = await repository.get_product(conn, product_id=id)
    if row is None:
        raise NotFound(f"product {id} does not exist", code="PRODUCT_NOT_FOUND")
    return _public(row)

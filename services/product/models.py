"""Response bodies of the product API."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Product(BaseModel):
    id: str
    name: str
    price: str = Field(pattern=r"^\d+\.\d{2}$", examples=["19.99"], description="Decimal string, never a float.")
    currency: str = Field(examples=["EUR"])


class ProductPage(BaseModel):
    items: list[Product]
    nextCursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")

"""Request and response bodies of the inventory API (unknown fields and loose types are rejected)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

# PostgreSQL text cannot hold NUL: refuse it as a bad id (422) instead of failing in the database (500).
Id = Annotated[StrictStr, Field(min_length=1, max_length=128, pattern=r"^[^\x00]+$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class StockLevel(Strict):
    productId: str
    stock: int


class ReserveRequest(Strict):
    orderId: Id
    productId: Id
    # The upper cap is a setting (MAX_RESERVE_QUANTITY), checked in the route.
    quantity: Annotated[StrictInt, Field(gt=0)]


class Reservation(Strict):
    orderId: str
    productId: str
    quantity: int
    stock: int = Field(description="Stock left right after this reservation (the same on a replay).")


class ReleaseRequest(Strict):
    orderId: Id


class ReleaseResult(Strict):
    orderId: str
    status: Literal["released", "not_found"]

"""Request and response bodies of the notification API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictStr


class NotificationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    userId: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    message: Annotated[StrictStr, Field(min_length=1, max_length=2000)]
    orderId: Annotated[StrictStr, Field(min_length=1, max_length=128)]


class Notification(BaseModel):
    id: int
    userId: str
    message: str
    orderId: str
    createdAt: datetime


class NotificationPage(BaseModel):
    items: list[Notification]
    nextCursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")

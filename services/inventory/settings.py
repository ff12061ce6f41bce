"""Inventory settings: the common ones plus the reservation cap (the bootstrap seeds the catalogue)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from services.common.settings import ServiceSettings


class Settings(ServiceSettings):
    DATABASE_NAME: str = "inventory"
    MAX_RESERVE_QUANTITY: int = Field(default=100, ge=1)


@lru_cache
def get_settings() -> Settings:
    return Settings()

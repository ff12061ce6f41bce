"""Product settings: the common ones plus whether to seed the catalogue."""

from __future__ import annotations

from functools import lru_cache

from services.common.settings import ServiceSettings


class Settings(ServiceSettings):
    DATABASE_NAME: str = "product"
    SEED_CATALOGUE: bool = True


@lru_cache
def get_settings() -> Settings:
    return Settings()

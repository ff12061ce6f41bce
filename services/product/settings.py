"""Product settings: the common ones (the bootstrap seeds the catalogue)."""

from __future__ import annotations

from functools import lru_cache

from services.common.settings import ServiceSettings


class Settings(ServiceSettings):
    DATABASE_NAME: str = "product"


@lru_cache
def get_settings() -> Settings:
    return Settings()

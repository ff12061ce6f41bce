"""Notification settings: the common ones."""

from __future__ import annotations

from functools import lru_cache

from services.common.settings import ServiceSettings


class Settings(ServiceSettings):
    DATABASE_NAME: str = "notification"


@lru_cache
def get_settings() -> Settings:
    return Settings()

"""Settings from environment variables (the Deployment and the local twin set the same names)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=True, extra="ignore")

    HOST: str = "127.0.0.1"
    """Loopback by default; the Deployment sets 0.0.0.0 so the sidecar can reach it."""
    PORT: int = Field(default=8080, ge=1, le=65535)
    VERSION: str = "dev"
    """What ``GET /version`` reports (the image tag's version, e.g. 1.0.0 for v1)."""
    FAIL_RATE: float = Field(default=0.0, ge=0.0, le=1.0)
    """Fault injection for resilience tests: this share of non-probe requests answers 500. Off (0) by default."""
    LOG_LEVEL: str = "INFO"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

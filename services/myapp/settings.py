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
    FAULT_PERCENT: int = Field(default=0, ge=0, le=100)
    """Fault injection: this percent of non-probe requests answers 500 (``appV2FaultPercent`` sets it on v2 only,
    to rehearse a bad release; outlier-detection tests use 100). Off (0) by default."""
    LOG_LEVEL: str = "INFO"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

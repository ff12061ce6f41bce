"""Settings every service reads from its environment (field names are the env var names)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """HOST/PORT for uvicorn, DATABASE_* for the pool, LOG_LEVEL for the JSON logger."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True)

    # Loopback by default: only Kubernetes (which sets HOST=0.0.0.0 in the pod) opens the port wider.
    HOST: str = "127.0.0.1"
    PORT: int = Field(default=8080, ge=1, le=65535)
    DATABASE_HOST: str = "127.0.0.1"
    DATABASE_PORT: int = Field(default=5432, ge=1, le=65535)
    DATABASE_NAME: str = "postgres"
    DATABASE_USER: str = "postgres"
    DATABASE_PASSWORD: SecretStr = SecretStr("")
    DATABASE_POOL_SIZE: int = Field(default=10, ge=1, le=100)
    DATABASE_TIMEOUT_SECONDS: float = Field(default=5.0, gt=0)
    LOG_LEVEL: str = "INFO"

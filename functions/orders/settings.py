"""The orders group's environment contract.

`Env` is the group's full set (what `create_order` reads). `get_order` and `list_orders` only touch the orders table
and read `ReadEnv`, a subset, so they can be deployed without the mesh URL or the idempotency table.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from functions.common.settings import TRACING_ENDPOINT, load_env


@dataclass(frozen=True, kw_only=True)
class ServiceClaims:
    """The service token's claims and lifetime (`functions.orders.service_token` signs them)."""

    issuer: str
    subject: str
    audience: str
    ttl_seconds: int
    refresh_margin_seconds: int

    def __post_init__(self) -> None:
        if not 0 <= self.refresh_margin_seconds < self.ttl_seconds:
            raise ValueError("the refresh margin must be shorter than the token's lifetime")


class ReadEnv(BaseModel):
    """What `functions.orders.handlers.get_order` and `functions.orders.handlers.list_orders` read."""

    # Built on first load, not at import: each entry point validates only the one model it reads, and the Pulumi
    # program, which imports this module only for the field names, never builds either.
    model_config = ConfigDict(defer_build=True)

    POWERTOOLS_SERVICE_NAME: str = "orders"
    LOG_LEVEL: str = "INFO"
    OTEL_EXPORTER_OTLP_ENDPOINT: str = Field(default="", description=TRACING_ENDPOINT)
    ORDERS_TABLE_NAME: str = Field(min_length=1)


class Env(ReadEnv):
    """What `functions.orders.handlers.create_order` reads."""

    IDEMPOTENCY_TABLE_NAME: str = Field(min_length=1)
    K8S_API_URL: AnyHttpUrl = Field(description="base URL of the mesh's ingress (inventory, notifications)")
    HTTP_CONNECT_TIMEOUT: float = Field(default=1.0, gt=0, le=10)
    HTTP_READ_TIMEOUT: float = Field(default=3.0, gt=0, le=30)
    # The mesh credential (functions/orders/service_token.py): who the ingress lets change stock.
    SERVICE_TOKEN_SECRET_ARN: str = Field(min_length=1, description="secret whose SecretString is the ES256 PEM key")
    SERVICE_TOKEN_ISSUER: str = Field(min_length=1)
    SERVICE_TOKEN_SUBJECT: str = Field(min_length=1)
    SERVICE_TOKEN_AUDIENCE: str = Field(min_length=1)
    SERVICE_TOKEN_TTL_SECONDS: int = Field(default=300, ge=60, le=3600)

    @property
    def services_url(self) -> str:
        """`K8S_API_URL` without a trailing slash, ready for `f"{url}/api/..."`."""
        return str(self.K8S_API_URL).rstrip("/")

    @property
    def service_claims(self) -> ServiceClaims:
        """The service token's claims; renewed a minute (at most half its life) before it expires."""
        ttl = self.SERVICE_TOKEN_TTL_SECONDS
        return ServiceClaims(issuer=self.SERVICE_TOKEN_ISSUER, subject=self.SERVICE_TOKEN_SUBJECT,
                             audience=self.SERVICE_TOKEN_AUDIENCE, ttl_seconds=ttl,
                             refresh_margin_seconds=min(60, ttl // 2))


# Which model each entry point's environment must satisfy (the Pulumi component and the twin read this).
ENV_BY_HANDLER: dict[str, type[BaseModel]] = {
    "functions.orders.handlers.create_order": Env,
    "functions.orders.handlers.get_order": ReadEnv,
    "functions.orders.handlers.list_orders": ReadEnv,
}


@cache
def get_env() -> Env:
    """The create-order environment, read once per container."""
    return load_env(Env)


@cache
def get_read_env() -> ReadEnv:
    """The get/list environment, read once per container."""
    return load_env(ReadEnv)

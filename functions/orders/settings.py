"""The orders group's environment contract.

`Env` is the group's full set (what `create_order` reads). `get_order` and `list_orders` only touch the orders table
and read `ReadEnv`, a subset, so they can be deployed without the mesh URL or the idempotency table.
"""

from __future__ import annotations

from functools import cache

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from functions.common.settings import load_env


class ReadEnv(BaseModel):
    """What `functions.orders.handlers.get_order` and `functions.orders.handlers.list_orders` read."""

    # Built on first load, not at import: each entry point validates only the one model it reads, and the Pulumi
    # program, which imports this module only for the field names, never builds either.
    model_config = ConfigDict(defer_build=True)

    POWERTOOLS_SERVICE_NAME: str = "orders"
    LOG_LEVEL: str = "INFO"
    ORDERS_TABLE_NAME: str = Field(min_length=1)


class Env(ReadEnv):
    """What `functions.orders.handlers.create_order` reads."""

    IDEMPOTENCY_TABLE_NAME: str = Field(min_length=1)
    K8S_API_URL: AnyHttpUrl = Field(description="base URL of the mesh's ingress (inventory, notifications)")
    HTTP_CONNECT_TIMEOUT: float = Field(default=1.0, gt=0, le=10)
    HTTP_READ_TIMEOUT: float = Field(default=3.0, gt=0, le=30)

    @property
    def services_url(self) -> str:
        """`K8S_API_URL` without a trailing slash, ready for `f"{url}/api/..."`."""
        return str(self.K8S_API_URL).rstrip("/")


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

"""The auth group's environment contract.

`Env` is the group's full set (what `register` and `token` read). The authorizer reads only `AuthorizerEnv`, a
subset, so it can be deployed without the users table's name (it never touches the table).
"""

from __future__ import annotations

from functools import cache

from pydantic import BaseModel, ConfigDict, Field

from functions.common.settings import TRACING_ENDPOINT, load_env


class AuthorizerEnv(BaseModel):
    """What `functions.auth.handlers.authorizer` reads."""

    # Built on first load, not at import: each entry point validates only the one model it reads, and the Pulumi
    # program, which imports this module only for the field names, never builds either.
    model_config = ConfigDict(defer_build=True)

    POWERTOOLS_SERVICE_NAME: str = "auth"
    LOG_LEVEL: str = "INFO"
    OTEL_EXPORTER_OTLP_ENDPOINT: str = Field(default="", description=TRACING_ENDPOINT)
    JWT_SECRET_ARN: str = Field(min_length=1, description="Secrets Manager secret whose SecretString is the HS256 key")


class Env(AuthorizerEnv):
    """What `functions.auth.handlers.register` and `functions.auth.handlers.token` read."""

    USERS_TABLE_NAME: str = Field(min_length=1)
    TOKEN_TTL_SECONDS: int = Field(default=900, ge=60, le=86_400, description="access token lifetime")


# Which model each entry point's environment must satisfy (the Pulumi component and the twin read this).
ENV_BY_HANDLER: dict[str, type[BaseModel]] = {
    "functions.auth.handlers.register": Env,
    "functions.auth.handlers.token": Env,
    "functions.auth.handlers.authorizer": AuthorizerEnv,
}


@cache
def get_env() -> Env:
    """The register/token environment, read once per container."""
    return load_env(Env)


@cache
def get_authorizer_env() -> AuthorizerEnv:
    """The authorizer's environment, read once per container."""
    return load_env(AuthorizerEnv)

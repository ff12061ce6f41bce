"""The environment contract of every TODO function: field names are exactly the variables the code reads."""

from __future__ import annotations

from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from functions.common.settings import TRACING_ENDPOINT, load_env


class Env(BaseModel):
    """What the Pulumi component (and the local twin) must set on each TODO function."""

    # Built on first load, not at import: the validator is cold-start work, and the Pulumi program, which imports this
    # module only for the field names, never needs it.
    model_config = ConfigDict(frozen=True, defer_build=True)

    TABLE_NAME: str = Field(min_length=1, description="Name of the DynamoDB table holding the todos.")
    POWERTOOLS_SERVICE_NAME: str = Field(default="todos", min_length=1, description="`service` in every log line.")
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO", description="Minimum level of the JSON logs."
    )
    OTEL_EXPORTER_OTLP_ENDPOINT: str = Field(default="", description=TRACING_ENDPOINT)


@cache
def get_env() -> Env:
    """The validated environment, read once per container (fails naming any missing or bad variable)."""
    return load_env(Env)

"""The environment contract of the image function: field names are exactly the variables its code reads."""

from __future__ import annotations

from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from functions.common.settings import TRACING_ENDPOINT, load_env


class Env(BaseModel):
    """What the `ImagePipeline` component (and the local twin) must set on the image function."""

    # Built on first load, not at import: the validator is cold-start work, and the Pulumi program, which imports this
    # module only for the field names, never needs it.
    model_config = ConfigDict(frozen=True, defer_build=True)

    BUCKET_NAME: str = Field(min_length=3, description="Bucket holding original/ uploads and the derivatives.")
    TABLE_NAME: str = Field(min_length=1, description="DynamoDB table of image metadata (hash key `id`).")
    MAX_IMAGE_BYTES: int = Field(gt=0, description="Uploads larger than this are recorded as TOO_LARGE_BYTES.")
    MAX_IMAGE_PIXELS: int = Field(gt=0, description="Decompression-bomb guard: width*height above this is refused.")
    POWERTOOLS_SERVICE_NAME: str = Field(default="images", min_length=1, description="`service` in every log line.")
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO", description="Minimum level of the JSON logs."
    )
    OTEL_EXPORTER_OTLP_ENDPOINT: str = Field(default="", description=TRACING_ENDPOINT)


@cache
def get_env() -> Env:
    """The validated environment, read once per container (fails naming any missing or bad variable)."""
    return load_env(Env)

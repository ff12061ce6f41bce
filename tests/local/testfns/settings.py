"""Environment contract of the test handlers (the twin checks the graph against it, as for functions/<group>)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Env(BaseModel):
    """What the echo, fail, slow, binary and malformed handlers read."""

    GREETING: str = Field(min_length=1)


class RecorderEnv(BaseModel):
    """What the S3 recorder reads."""

    BUCKET_NAME: str = Field(min_length=3)


class AuthorizerEnv(BaseModel):
    """The authorizer reads nothing."""


ENV_BY_HANDLER: dict[str, type[BaseModel]] = {
    "tests.local.testfns.handlers.record_s3": RecorderEnv,
    "tests.local.testfns.handlers.authorizer": AuthorizerEnv,
}

"""Request and response models of the auth API.

Every model is `defer_build`: its validator is built on first use, not at import, so each function pays at cold
start only for the models its own route touches (register never builds the token models, nor token the register ones).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

USERNAME_PATTERN = r"^[A-Za-z0-9_.-]{3,64}$"


class RegisterRequest(BaseModel):
    """`POST /auth/register` body."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, defer_build=True)

    username: str = Field(pattern=USERNAME_PATTERN)
    password: str = Field(min_length=8, max_length=128)


class TokenRequest(BaseModel):
    """`POST /auth/token` body; lengths are bounded so nobody can make us hash a megabyte."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=128)


class RegisteredUser(BaseModel):
    """`POST /auth/register` answer."""

    model_config = ConfigDict(defer_build=True)

    username: str


class TokenResponse(BaseModel):
    """`POST /auth/token` answer (RFC 6750 bearer token)."""

    model_config = ConfigDict(defer_build=True)

    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int

"""Request and response shapes of the TODO API.

Request models are strict (no coercion: `"true"` is not a boolean, `1` is not a title) and forbid unknown
fields, so a typo like `{"titel": ...}` is a 400 naming the field instead of being silently dropped.

Every model is `defer_build`: pydantic builds a model's validator on its first use instead of at import, so each
function (one per route) pays at cold start only for the one or two models its route touches.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

TITLE_MAX = 200
DESCRIPTION_MAX = 2000
LIMIT_DEFAULT = 50
LIMIT_MAX = 100


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only whitespace")
    return value


Title = Annotated[str, Field(min_length=1, max_length=TITLE_MAX), AfterValidator(_not_blank)]
Description = Annotated[str, Field(max_length=DESCRIPTION_MAX)]


class Todo(BaseModel):
    """A stored todo, exactly as the API returns it."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    id: str
    title: str
    description: str
    completed: bool
    createdAt: str
    updatedAt: str


class TodoCreate(BaseModel):
    """Body of `POST /todos`."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)

    title: Title
    description: Description = ""


class TodoUpdate(BaseModel):
    """Body of `PUT /todos/{id}`: any non-empty subset of the editable fields (null is not a value)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)

    title: Title | None = None
    description: Description | None = None
    completed: bool | None = None

    @field_validator("title", "description", "completed", mode="before")
    @classmethod
    def _reject_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null")
        return value

    def changes(self) -> dict[str, Any]:
        """Only the fields the client sent, in a stable order."""
        return {name: getattr(self, name) for name in type(self).model_fields if name in self.model_fields_set}


class ListQuery(BaseModel):
    """Query string of `GET /todos` (values arrive as strings; unknown parameters are ignored)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    limit: int = Field(default=LIMIT_DEFAULT, ge=1, le=LIMIT_MAX)
    nextToken: str | None = Field(default=None, max_length=2048)

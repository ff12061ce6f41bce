"""What the TODO logic needs from the outside world (implemented by `adapters.py`, or fakes in tests)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from functions.todos.models import Todo


class TodoRepository(Protocol):
    """Storage port. Implementations: `adapters.DynamoTodoRepository`, and in-memory fakes in tests."""

    def put_new(self, todo: Todo) -> None:
        """Store a todo whose id is not yet taken (raise `Conflict` if it is)."""

    def get(self, todo_id: str) -> Todo | None:
        """The todo, or None."""

    def scan_page(self, limit: int, after: str | None) -> tuple[list[Todo], str | None]:
        """At most `limit` todos following id `after` in storage order, and the id to continue after (or None)."""

    def update(self, todo_id: str, changes: Mapping[str, Any], updated_at: str) -> Todo | None:
        """Apply `changes` and `updatedAt` atomically to an existing todo; None if it does not exist (never create)."""

    def delete(self, todo_id: str) -> bool:
        """Delete an existing todo; False if it did not exist."""

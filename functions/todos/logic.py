"""TODO rules, independent of events and of AWS: every function takes a `TodoRepository`.

Ids are uuid4 in canonical form; a string that is not one can never name a stored todo, so it is a 404 (the
same answer as a well-formed id that does not exist) and the table is not read. Pagination tokens are opaque
to clients: base64url of the last id of the page, checked on the way back in so a forged token is a 400.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from functions.common import page_tokens
from functions.common.errors import NotFound, ValidationFailed
from functions.todos.models import Todo, TodoCreate, TodoUpdate
from functions.todos.ports import TodoRepository


@dataclass(frozen=True)
class Page:
    """One page of todos and the token for the next one (None on the last page)."""

    items: list[Todo]
    next_token: str | None


def utc_now() -> str:
    """ISO-8601 UTC with microseconds and a `Z`, e.g. `2026-01-31T12:00:00.123456Z` (sorts as text)."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def new_id() -> str:
    return str(uuid.uuid4())


def is_todo_id(value: str) -> bool:
    """True for a canonical (lower-case, hyphenated) UUID, the only form this API issues."""
    try:
        return str(uuid.UUID(value)) == value
    except (ValueError, TypeError):
        return False


def encode_token(last_id: str) -> str:
    return page_tokens.encode({"id": last_id})


def decode_token(token: str) -> str:
    """The id a page ended at; `ValidationFailed` naming `nextToken` for anything this API did not issue."""
    bad = ValidationFailed("nextToken is not a token returned by GET /todos", field="nextToken")
    data = page_tokens.decode(token)
    if not isinstance(data, dict) or set(data) != {"id"} or not isinstance(data["id"], str):
        raise bad
    if not is_todo_id(data["id"]):
        raise bad
    return data["id"]


def create_todo(
    repo: TodoRepository,
    data: TodoCreate,
    *,
    now: Callable[[], str] = utc_now,
    make_id: Callable[[], str] = new_id,
) -> Todo:
    stamp = now()
    todo = Todo(
        id=make_id(),
        title=data.title,
        description=data.description,
        completed=False,
        createdAt=stamp,
        updatedAt=stamp,
    )
    repo.put_new(todo)
    return todo


def _missing(todo_id: str) -> NotFound:
    return NotFound(f"todo {todo_id!r} not found", field="id")


def get_todo(repo: TodoRepository, todo_id: str) -> Todo:
    todo = repo.get(todo_id) if is_todo_id(todo_id) else None
    if todo is None:
        raise _missing(todo_id)
    return todo


def list_todos(repo: TodoRepository, *, limit: int, next_token: str | None) -> Page:
    after = decode_token(next_token) if next_token is not None else None
    items, last = repo.scan_page(limit, after)
    return Page(items=items, next_token=encode_token(last) if last is not None else None)


def update_todo(
    repo: TodoRepository, todo_id: str, patch: TodoUpdate, *, now: Callable[[], str] = utc_now
) -> Todo:
    changes = patch.changes()
    if not changes:
        raise ValidationFailed("nothing to update: send at least one of title, description, completed", field="body")
    todo = repo.update(todo_id, changes, now()) if is_todo_id(todo_id) else None
    if todo is None:
        raise _missing(todo_id)
    return todo


def delete_todo(repo: TodoRepository, todo_id: str) -> None:
    if not (is_todo_id(todo_id) and repo.delete(todo_id)):
        raise _missing(todo_id)

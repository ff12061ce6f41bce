"""TODO rules against an in-memory repository: no events, no AWS."""

from __future__ import annotations

import base64
import itertools
import json
import uuid
from collections.abc import Mapping
from typing import Any

import pytest
from pydantic import ValidationError

from functions.common.errors import Conflict, NotFound, ValidationFailed
from functions.todos import logic
from functions.todos.models import ListQuery, Todo, TodoCreate, TodoUpdate


class InMemoryTodos:
    """A `TodoRepository` keeping todos in id order, as a Scan over a hash-keyed table walks them."""

    def __init__(self) -> None:
        self.items: dict[str, Todo] = {}
        self.scans: list[tuple[int, str | None]] = []

    def put_new(self, todo: Todo) -> None:
        if todo.id in self.items:
            raise Conflict("exists", field="id")
        self.items[todo.id] = todo

    def get(self, todo_id: str) -> Todo | None:
        return self.items.get(todo_id)

    def scan_page(self, limit: int, after: str | None) -> tuple[list[Todo], str | None]:
        self.scans.append((limit, after))
        ordered = sorted(self.items)
        start = 0 if after is None else next((i for i, k in enumerate(ordered) if k > after), len(ordered))
        page = ordered[start : start + limit]
        more = start + limit < len(ordered)
        return [self.items[k] for k in page], (page[-1] if page and more else None)

    def update(self, todo_id: str, changes: Mapping[str, Any], updated_at: str) -> Todo | None:
        if todo_id not in self.items:
            return None
        todo = self.items[todo_id].model_copy(update={**changes, "updatedAt": updated_at})
        self.items[todo_id] = todo
        return todo

    def delete(self, todo_id: str) -> bool:
        return self.items.pop(todo_id, None) is not None


def ticking_clock() -> Any:
    counter = itertools.count()
    return lambda: f"2026-01-01T00:00:{next(counter):02d}.000000Z"


@pytest.fixture
def repo() -> InMemoryTodos:
    return InMemoryTodos()


def make(repo: InMemoryTodos, title: str = "t", **kwargs: Any) -> Todo:
    return logic.create_todo(repo, TodoCreate(title=title), **kwargs)


def test_create_sets_server_fields(repo: InMemoryTodos) -> None:
    todo = logic.create_todo(
        repo, TodoCreate(title="Buy milk", description="d"), now=lambda: "2026-01-01T00:00:00.000000Z"
    )
    assert (todo.title, todo.description, todo.completed) == ("Buy milk", "d", False)
    assert todo.createdAt == todo.updatedAt == "2026-01-01T00:00:00.000000Z"
    assert uuid.UUID(todo.id).version == 4
    assert repo.items == {todo.id: todo}


def test_create_with_a_taken_id_raises_conflict(repo: InMemoryTodos) -> None:
    make(repo, make_id=lambda: "11111111-1111-4111-8111-111111111111")
    with pytest.raises(Conflict):
        make(repo, make_id=lambda: "11111111-1111-4111-8111-111111111111")


def test_utc_now_is_iso_8601_utc_with_z() -> None:
    from datetime import datetime

    stamp = logic.utc_now()
    assert stamp.endswith("Z") and datetime.fromisoformat(stamp).utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_get_missing_raises_not_found(repo: InMemoryTodos) -> None:
    with pytest.raises(NotFound):
        logic.get_todo(repo, str(uuid.uuid4()))


def test_non_canonical_ids_are_not_found_without_touching_storage(repo: InMemoryTodos) -> None:
    todo = make(repo)
    for bad in (todo.id.upper(), "{" + todo.id + "}", todo.id.replace("-", ""), "abc", ""):
        with pytest.raises(NotFound):
            logic.get_todo(repo, bad)
        with pytest.raises(NotFound):
            logic.update_todo(repo, bad, TodoUpdate(title="x"))
        with pytest.raises(NotFound):
            logic.delete_todo(repo, bad)
    assert repo.items[todo.id] == todo


def test_update_applies_only_sent_fields_and_bumps_updated_at(repo: InMemoryTodos) -> None:
    clock = ticking_clock()
    todo = make(repo, "old", now=clock)
    updated = logic.update_todo(repo, todo.id, TodoUpdate(completed=True), now=clock)
    assert updated.completed is True and updated.title == "old" and updated.description == ""
    assert updated.createdAt == todo.createdAt and updated.updatedAt > todo.updatedAt


def test_update_with_no_fields_raises_validation_failed_before_lookup(repo: InMemoryTodos) -> None:
    with pytest.raises(ValidationFailed) as err:
        logic.update_todo(repo, str(uuid.uuid4()), TodoUpdate())
    assert err.value.status == 400 and err.value.code == "VALIDATION_ERROR"


def test_update_missing_raises_not_found_and_creates_nothing(repo: InMemoryTodos) -> None:
    with pytest.raises(NotFound):
        logic.update_todo(repo, str(uuid.uuid4()), TodoUpdate(title="x"))
    assert repo.items == {}


def test_delete_removes_then_raises_not_found(repo: InMemoryTodos) -> None:
    todo = make(repo)
    logic.delete_todo(repo, todo.id)
    assert repo.items == {}
    with pytest.raises(NotFound):
        logic.delete_todo(repo, todo.id)


def test_list_walks_all_pages_exactly_once(repo: InMemoryTodos) -> None:
    made = {make(repo, f"t{i}").id for i in range(11)}
    seen: list[str] = []
    token: str | None = None
    while True:
        page = logic.list_todos(repo, limit=4, next_token=token)
        seen += [t.id for t in page.items]
        token = page.next_token
        if token is None:
            break
    assert len(seen) == 11 and set(seen) == made
    assert [limit for limit, _ in repo.scans] == [4, 4, 4]


def test_list_token_round_trips_and_is_opaque(repo: InMemoryTodos) -> None:
    todo_id = str(uuid.uuid4())
    token = logic.encode_token(todo_id)
    assert todo_id not in token and "=" not in token
    assert logic.decode_token(token) == todo_id


@pytest.mark.parametrize(
    "token",
    [
        "%%%",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        base64.urlsafe_b64encode(b'{"id": 5}').decode(),
        base64.urlsafe_b64encode(json.dumps({"id": "x"}).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps({"ID": "11111111-1111-4111-8111-111111111111"}).encode()).decode(),
    ],
)
def test_decode_token_rejects_anything_not_issued(token: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        logic.decode_token(token)
    assert err.value.field == "nextToken"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": 1}, "title"),
        ({"title": "ok", "description": "x" * 2001}, "description"),
        ({"title": "ok", "extra": 1}, "extra"),
    ],
)
def test_create_model_rejects(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        TodoCreate.model_validate(data)
    assert err.value.errors()[0]["loc"] == (field,)


def test_update_model_keeps_only_sent_fields_in_order() -> None:
    assert TodoUpdate.model_validate({"completed": False, "title": "a"}).changes() == {"title": "a", "completed": False}
    assert TodoUpdate.model_validate({}).changes() == {}


@pytest.mark.parametrize(("raw", "limit"), [({}, 50), ({"limit": "1"}, 1), ({"limit": "100"}, 100)])
def test_list_query_limit_defaults_and_bounds(raw: dict[str, str], limit: int) -> None:
    assert ListQuery.model_validate(raw).limit == limit

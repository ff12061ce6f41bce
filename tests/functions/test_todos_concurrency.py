"""Concurrent writers on one todo: no lost item, no 500, the stored state is one complete write, and an update
racing a delete never brings the todo back.

Handlers run in separate processes, one event at a time each, as Lambda runs them (Powertools keeps the current
event on the resolver class, so one process must not serve two events at once). The repository-level test adds
thread pressure through one shared boto3 client, which is thread-safe.
"""

from __future__ import annotations

import multiprocessing
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import pytest

from functions.todos import logic
from functions.todos.adapters import DynamoTodoRepository, from_item
from functions.todos.models import TodoCreate, TodoUpdate
from tests.support.events import api_event

_ENV_KEYS = ("AWS_ENDPOINT_URL", "TABLE_NAME", "POWERTOOLS_SERVICE_NAME", "LOG_LEVEL", "AWS_DEFAULT_REGION")
_seen_env: dict[str, str] = {}


def _invoke_in_worker(env: dict[str, str], handler_name: str, event: dict[str, Any]) -> dict[str, Any]:
    """Runs in a worker process: a cold or warm 'Lambda container' serving one event."""
    from functions.common import aws
    from functions.todos import handlers, settings
    from tests.support.events import lambda_context

    if env != _seen_env:
        os.environ.update(env)
        _seen_env.clear()
        _seen_env.update(env)
        aws.reset()
        settings.get_env.cache_clear()
    result: dict[str, Any] = getattr(handlers, handler_name)(event, lambda_context(handler_name))
    return result


@pytest.fixture(scope="module")
def containers() -> Iterator[ProcessPoolExecutor]:
    """Four warm worker processes (spawned: no state inherited from the test process)."""
    with ProcessPoolExecutor(max_workers=4, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


def _env() -> dict[str, str]:
    return {k: os.environ[k] for k in _ENV_KEYS if k in os.environ}


def _item_event(method: str, todo_id: str, body: Any = None) -> dict[str, Any]:
    return api_event(
        method, f"/todos/{todo_id}", resource="/todos/{id}", path_parameters={"id": todo_id}, body=body
    )


def _get(dynamodb: Any, table: str, todo_id: str) -> dict[str, Any] | None:
    item = dynamodb.get_item(TableName=table, Key={"id": {"S": todo_id}}, ConsistentRead=True).get("Item")
    return from_item(item).model_dump() if item else None


def _count(dynamodb: Any, table: str) -> int:
    return int(dynamodb.scan(TableName=table, Select="COUNT")["Count"])


def _create(containers: ProcessPoolExecutor, title: str) -> dict[str, Any]:
    import json

    response = containers.submit(
        _invoke_in_worker, _env(), "create_todo", api_event("POST", "/todos", body={"title": title})
    ).result()
    assert response["statusCode"] == 201, response
    body: dict[str, Any] = json.loads(response["body"])
    return body


def test_concurrent_creates_all_succeed_with_distinct_ids(
    containers: ProcessPoolExecutor, dynamodb: Any, todos_table: str
) -> None:
    import json

    events = [api_event("POST", "/todos", body={"title": f"parallel {i}"}) for i in range(24)]
    responses = list(containers.map(_invoke_in_worker, [_env()] * 24, ["create_todo"] * 24, events))
    assert [r["statusCode"] for r in responses] == [201] * 24
    ids = {json.loads(r["body"])["id"] for r in responses}
    assert len(ids) == 24 and _count(dynamodb, todos_table) == 24


def test_concurrent_updates_of_one_todo_leave_one_complete_write(
    containers: ProcessPoolExecutor, dynamodb: Any, todos_table: str
) -> None:
    import json

    made = _create(containers, "contended")
    writes = [{"title": f"writer {i}", "description": f"by writer {i}", "completed": i % 2 == 0} for i in range(24)]
    events = [_item_event("PUT", made["id"], body) for body in writes]
    responses = list(containers.map(_invoke_in_worker, [_env()] * 24, ["update_todo"] * 24, events))

    assert [r["statusCode"] for r in responses] == [200] * 24
    returned = [json.loads(r["body"]) for r in responses]
    final = _get(dynamodb, todos_table, made["id"])
    assert final is not None and _count(dynamodb, todos_table) == 1
    # Every write is all-or-nothing: the stored todo is exactly what one of the writers got back.
    assert final in returned
    assert {"title": final["title"], "description": final["description"], "completed": final["completed"]} in writes
    assert final["createdAt"] == made["createdAt"]


def test_update_racing_delete_returns_200_or_404_and_never_resurrects(
    containers: ProcessPoolExecutor, dynamodb: Any, todos_table: str
) -> None:
    for round_ in range(4):
        made = _create(containers, f"doomed {round_}")
        handlers_and_events = [("update_todo", _item_event("PUT", made["id"], {"completed": True})) for _ in range(7)]
        handlers_and_events.insert(round_ % 8, ("delete_todo", _item_event("DELETE", made["id"])))
        futures = [containers.submit(_invoke_in_worker, _env(), name, event) for name, event in handlers_and_events]
        statuses = [(name, f.result()["statusCode"]) for (name, _), f in zip(handlers_and_events, futures, strict=True)]

        assert ("delete_todo", 204) in statuses
        assert all(status in (200, 404) for name, status in statuses if name == "update_todo"), statuses
        assert _get(dynamodb, todos_table, made["id"]) is None, f"round {round_}: todo came back after delete"
    assert _count(dynamodb, todos_table) == 0


def test_threads_hammering_the_repository_keep_updates_atomic_and_deletes_final(
    dynamodb: Any, todos_table: str
) -> None:
    repo = DynamoTodoRepository(todos_table)
    todos = [logic.create_todo(repo, TodoCreate(title=f"t{i}")) for i in range(4)]

    def update(i: int) -> str:
        todo = todos[i % 4]
        try:
            logic.update_todo(repo, todo.id, TodoUpdate(title=f"u{i}", description=f"u{i}"))
            return "updated"
        except Exception as exc:  # only NotFound is acceptable, and only for the deleted todo
            assert type(exc).__name__ == "NotFound" and todo.id == todos[0].id, exc
            return "not found"

    def delete_first() -> str:
        logic.delete_todo(repo, todos[0].id)
        return "deleted"

    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(update, i) for i in range(64)]
        futures.insert(10, pool.submit(delete_first))
        outcomes = [f.result() for f in futures]

    assert outcomes.count("deleted") == 1
    assert _get(dynamodb, todos_table, todos[0].id) is None
    for todo in todos[1:]:
        final = _get(dynamodb, todos_table, todo.id)
        # title and description were always written together: a torn write would split them.
        assert final is not None and final["title"] == final["description"] and final["title"].startswith("u")
    assert _count(dynamodb, todos_table) == 3
    assert all(uuid.UUID(t.id).version == 4 for t in todos)

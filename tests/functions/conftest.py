"""Fixtures for Lambda handler tests: a fresh todos table in the session's moto server, built from the same
key schema the Pulumi component uses, and the function environment its `Env` model requires."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from functions.common import aws
from functions.todos import settings as todo_settings
from infra.tables import TODOS
from tests.support.dynamo import create_table
from tests.support.events import api_event, lambda_context

TODOS_TABLE = "todos-test"


@pytest.fixture
def fresh_aws_clients(aws_endpoint: str) -> Iterator[str]:
    """Drop cached clients and env models before and after, so a test never reuses another test's endpoint."""
    aws.reset()
    todo_settings.get_env.cache_clear()
    yield aws_endpoint
    aws.reset()
    todo_settings.get_env.cache_clear()


@pytest.fixture
def dynamodb(fresh_aws_clients: str) -> Any:
    """A low-level DynamoDB client on moto (separate from the handlers' cached one)."""
    return boto3.client("dynamodb", endpoint_url=fresh_aws_clients, region_name="eu-west-1")


@pytest.fixture
def todos_table(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty todos table, and the environment the TODO functions are deployed with."""
    create_table(dynamodb, TODOS, TODOS_TABLE)
    monkeypatch.setenv("TABLE_NAME", TODOS_TABLE)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "todos")
    monkeypatch.setenv("LOG_LEVEL", "INFO")
    return TODOS_TABLE


Invoke = Callable[..., dict[str, Any]]


@pytest.fixture
def invoke() -> Invoke:
    """`invoke(handler, method, path, **api_event_kwargs)`: run a handler on a real v1 proxy event."""

    def _invoke(handler: Callable[[dict[str, Any], Any], dict[str, Any]], method: str, path: str, **kwargs: Any):
        kwargs.setdefault("headers", {"Origin": "https://app.example.com"})
        return handler(api_event(method, path, **kwargs), lambda_context(handler.__name__))

    return _invoke


@pytest.fixture
def seed(dynamodb: Any, todos_table: str) -> Callable[[int], list[str]]:
    """`seed(n)`: write n todos straight into the table (BatchWriteItem) and return their ids."""
    from functions.todos.adapters import to_item
    from functions.todos.logic import new_id, utc_now
    from functions.todos.models import Todo

    def _seed(n: int) -> list[str]:
        stamp = utc_now()
        todos = [
            Todo(id=new_id(), title=f"seeded {i}", description="", completed=False, createdAt=stamp, updatedAt=stamp)
            for i in range(n)
        ]
        for start in range(0, n, 25):
            requests = [{"PutRequest": {"Item": to_item(t)}} for t in todos[start : start + 25]]
            pending: dict[str, Any] = {todos_table: requests}
            while pending:
                pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        return [t.id for t in todos]

    return _seed


@pytest.fixture
def todo_logs() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """`todo_logs()`: the JSON log lines the TODO functions wrote so far in this test, parsed."""
    import io
    import json

    from functions.todos.handlers import logger

    handler = logger.registered_handler
    buffer = io.StringIO()
    previous = handler.setStream(buffer)  # type: ignore[attr-defined]
    try:
        yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]

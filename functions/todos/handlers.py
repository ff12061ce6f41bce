"""Lambda entry points of the TODO API, one per route (`functions.todos.handlers.<name>`).

Each entry point has its own resolver holding only its route, so a function deployed with a read-only role
cannot be driven into a write by a mis-routed event: anything else is a 404 envelope. Handlers only parse,
call `logic`, and shape the response; errors are mapped once in `functions.common.http`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common.http import (
    APIGatewayRestResolver,
    Response,
    json_response,
    make_resolver,
    parse_body,
    parse_query,
)
from functions.common.logging import API_GATEWAY_REST, get_logger
from functions.common.tracing import traced
from functions.todos import logic
from functions.todos.adapters import DynamoTodoRepository
from functions.todos.models import ListQuery, TodoCreate, TodoUpdate
from functions.todos.ports import TodoRepository
from functions.todos.settings import get_env

SERVICE = "todos"
logger = get_logger(SERVICE)


def _repository() -> TodoRepository:
    return DynamoTodoRepository(get_env().TABLE_NAME)


def _resolver() -> APIGatewayRestResolver:
    return make_resolver(SERVICE, logger=logger)


def _entry(name: str, app: APIGatewayRestResolver) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    # Lambda runs one event at a time per process; Powertools keeps the current event on the resolver class,
    # so these entry points are not meant to be called from several threads of one process at once.
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return app.resolve(event, context)

    handler.__name__ = handler.__qualname__ = name
    logged = logger.inject_lambda_context(correlation_id_path=API_GATEWAY_REST, clear_state=True)(handler)
    # Outermost, so the span covers the logging setup too and continues the gateway's `traceparent`.
    decorated: Callable[[dict[str, Any], LambdaContext], dict[str, Any]] = traced(logged)
    return decorated


_list_app = _resolver()
_get_app = _resolver()
_create_app = _resolver()
_update_app = _resolver()
_delete_app = _resolver()


@_list_app.get("/todos")
def _list_route() -> Response:
    query = parse_query(_list_app, ListQuery)
    page = logic.list_todos(_repository(), limit=query.limit, next_token=query.nextToken)
    logger.info("listed todos", extra={"count": len(page.items), "more": page.next_token is not None})
    body: dict[str, Any] = {"items": [t.model_dump() for t in page.items]}
    if page.next_token is not None:  # absent on the last page (infra/openapi.yaml TodoPage)
        body["nextToken"] = page.next_token
    return json_response(200, body)


@_get_app.get("/todos/<todo_id>")
def _get_route(todo_id: str) -> Response:
    return json_response(200, logic.get_todo(_repository(), todo_id).model_dump())


@_create_app.post("/todos")
def _create_route() -> Response:
    todo = logic.create_todo(_repository(), parse_body(_create_app, TodoCreate))
    logger.info("created todo", extra={"todo_id": todo.id})
    return json_response(201, todo.model_dump(), headers={"Location": f"/todos/{todo.id}"})


@_update_app.put("/todos/<todo_id>")
def _update_route(todo_id: str) -> Response:
    todo = logic.update_todo(_repository(), todo_id, parse_body(_update_app, TodoUpdate))
    logger.info("updated todo", extra={"todo_id": todo.id})
    return json_response(200, todo.model_dump())


@_delete_app.delete("/todos/<todo_id>")
def _delete_route(todo_id: str) -> Response:
    logic.delete_todo(_repository(), todo_id)
    logger.info("deleted todo", extra={"todo_id": todo_id})
    return json_response(204, None)


list_todos = _entry("list_todos", _list_app)
get_todo = _entry("get_todo", _get_app)
create_todo = _entry("create_todo", _create_app)
update_todo = _entry("update_todo", _update_app)
delete_todo = _entry("delete_todo", _delete_app)

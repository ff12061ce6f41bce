"""The TODO API as API Gateway drives it: v1 proxy events into each entry point, a real table in moto."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from typing import Any

import pytest

from functions.todos import handlers
from functions.todos.logic import encode_token
from functions.todos.permissions import TABLE_ACTIONS
from tests.functions.conftest import Invoke
from tests.support.events import response_headers, response_json

ORIGIN = "https://app.example.com"
ITEM = "/todos/{id}"


def item_kwargs(todo_id: str, **kwargs: Any) -> dict[str, Any]:
    return {"resource": ITEM, "path_parameters": {"id": todo_id}, **kwargs}


def create(invoke: Invoke, body: Any = None, **kwargs: Any) -> dict[str, Any]:
    return invoke(handlers.create_todo, "POST", "/todos", resource="/todos", body=body, **kwargs)


def created(invoke: Invoke, title: str = "Buy milk", **extra: Any) -> dict[str, Any]:
    response = create(invoke, {"title": title, **extra})
    assert response["statusCode"] == 201, response
    body: dict[str, Any] = response_json(response)
    return body


def stored(dynamodb: Any, table: str, todo_id: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = dynamodb.get_item(TableName=table, Key={"id": {"S": todo_id}}).get("Item")
    return item


def count(dynamodb: Any, table: str) -> int:
    return int(dynamodb.scan(TableName=table, Select="COUNT")["Count"])


def assert_error(response: dict[str, Any], status: int, code: str, mentions: str | None = None) -> str:
    """The error envelope, its status and code, the CORS header; returns the message."""
    assert response["statusCode"] == status, response
    body = response_json(response)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code
    headers = response_headers(response)
    assert headers["access-control-allow-origin"] == "*"
    assert headers["content-type"] == "application/json"
    if mentions is not None:
        assert mentions in body["error"]["message"], body
    message: str = body["error"]["message"]
    return message


def iso_utc(value: str) -> datetime:
    assert value.endswith("Z"), value
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() is not None and parsed.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    return parsed


# --- POST /todos -------------------------------------------------------------------------------------------


def test_post_creates_todo_returns_201_with_item_and_location(invoke: Invoke, dynamodb: Any, todos_table: str) -> None:
    response = create(invoke, {"title": "Buy milk", "description": "2 litres"})

    assert response["statusCode"] == 201
    body = response_json(response)
    assert body["title"] == "Buy milk" and body["description"] == "2 litres" and body["completed"] is False
    assert uuid.UUID(body["id"]).version == 4 and str(uuid.UUID(body["id"])) == body["id"]
    assert iso_utc(body["createdAt"]) == iso_utc(body["updatedAt"])
    headers = response_headers(response)
    assert headers["location"] == f"/todos/{body['id']}"
    assert headers["access-control-allow-origin"] == "*"
    item = stored(dynamodb, todos_table, body["id"])
    assert item == {
        "id": {"S": body["id"]},
        "title": {"S": "Buy milk"},
        "description": {"S": "2 litres"},
        "completed": {"BOOL": False},
        "createdAt": {"S": body["createdAt"]},
        "updatedAt": {"S": body["updatedAt"]},
    }


def test_post_without_description_stores_empty_description(invoke: Invoke, todos_table: str) -> None:
    assert created(invoke, "Walk the dog")["description"] == ""


def test_post_gives_every_todo_a_distinct_id(invoke: Invoke, dynamodb: Any, todos_table: str) -> None:
    ids = {created(invoke, f"task {i}")["id"] for i in range(5)}
    assert len(ids) == 5 and count(dynamodb, todos_table) == 5


def test_post_accepts_base64_encoded_body(invoke: Invoke, todos_table: str) -> None:
    response = create(invoke, {"title": "encoded"}, base64_body=True)
    assert response["statusCode"] == 201 and response_json(response)["title"] == "encoded"


def test_post_accepts_title_of_exactly_200_chars_and_unicode(invoke: Invoke, todos_table: str) -> None:
    assert created(invoke, "é" * 200)["title"] == "é" * 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "   \t "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": 42}, "title"),
        ({"title": None}, "title"),
        ({"title": ["a"]}, "title"),
        ({"title": "ok", "description": 7}, "description"),
        ({"title": "ok", "description": "d" * 2001}, "description"),
        ({"title": "ok", "priority": "high"}, "priority"),
        ({"title": "ok", "completed": True}, "completed"),
        ({"title": "ok", "id": "mine"}, "id"),
    ],
    ids=[
        "missing-title",
        "empty-title",
        "blank-title",
        "long-title",
        "int-title",
        "null-title",
        "list-title",
        "int-description",
        "long-description",
        "unknown-field",
        "client-completed",
        "client-id",
    ],
)
def test_post_invalid_body_returns_400_naming_the_field(
    invoke: Invoke, dynamodb: Any, todos_table: str, body: dict[str, Any], field: str
) -> None:
    assert_error(create(invoke, body), 400, "VALIDATION_ERROR", mentions=f"'{field}'")
    assert count(dynamodb, todos_table) == 0


def test_post_unknown_field_message_says_it_is_unknown(invoke: Invoke, todos_table: str) -> None:
    message = assert_error(create(invoke, {"titel": "typo"}), 400, "VALIDATION_ERROR")
    assert "unknown field 'titel'" in message and "'title' is required" in message


@pytest.mark.parametrize("raw", ['{"title": "x"', "{bad json}", "title=x", '{"title": "x"}}'])
def test_post_malformed_json_returns_400(invoke: Invoke, dynamodb: Any, todos_table: str, raw: str) -> None:
    assert_error(create(invoke, raw), 400, "VALIDATION_ERROR", mentions="malformed JSON")
    assert count(dynamodb, todos_table) == 0


@pytest.mark.parametrize("raw", ["[1, 2]", '"a string"', "null", "3"])
def test_post_non_object_json_returns_400(invoke: Invoke, todos_table: str, raw: str) -> None:
    assert_error(create(invoke, raw), 400, "VALIDATION_ERROR", mentions="JSON object")


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_post_without_body_returns_400(invoke: Invoke, todos_table: str, raw: str | None) -> None:
    assert_error(create(invoke, raw), 400, "VALIDATION_ERROR", mentions="body is required")


def test_post_invalid_base64_body_returns_400(invoke: Invoke, todos_table: str) -> None:
    from tests.support.events import api_event, lambda_context

    event = api_event("POST", "/todos", body="not base64 !!!", headers={"Origin": ORIGIN})
    event["isBase64Encoded"] = True
    assert_error(handlers.create_todo(event, lambda_context()), 400, "VALIDATION_ERROR")


# --- GET /todos ---------------------------------------------------------------------------------------------


def list_page(invoke: Invoke, **query: str) -> dict[str, Any]:
    return invoke(handlers.list_todos, "GET", "/todos", resource="/todos", query=query or None)


def test_list_empty_table_returns_no_items_and_omits_the_token(invoke: Invoke, todos_table: str) -> None:
    response = list_page(invoke)
    assert response["statusCode"] == 200
    assert response_json(response) == {"items": []}


def test_list_returns_created_items(invoke: Invoke, todos_table: str) -> None:
    made = created(invoke, "only one")
    body = response_json(list_page(invoke))
    assert body == {"items": [made]}


def test_list_pages_through_every_item_exactly_once(invoke: Invoke, seed: Any) -> None:
    ids = seed(23)
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        query = {"limit": "5", **({"nextToken": token} if token else {})}
        response = list_page(invoke, **query)
        assert response["statusCode"] == 200
        body = response_json(response)
        assert len(body["items"]) <= 5
        seen += [item["id"] for item in body["items"]]
        pages += 1
        token = body.get("nextToken")
        if token is None:
            break
        assert pages < 10, "pagination does not terminate"
    assert pages >= 5
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))


def test_list_default_limit_is_50(invoke: Invoke, seed: Any) -> None:
    seed(60)
    first = response_json(list_page(invoke))
    assert len(first["items"]) == 50 and first["nextToken"]
    second = response_json(list_page(invoke, nextToken=first["nextToken"]))
    assert len(second["items"]) == 10 and "nextToken" not in second
    assert not {i["id"] for i in first["items"]} & {i["id"] for i in second["items"]}


@pytest.mark.parametrize("limit", ["1", "100"])
def test_list_accepts_limit_bounds(invoke: Invoke, seed: Any, limit: str) -> None:
    seed(3)
    body = response_json(list_page(invoke, limit=limit))
    assert len(body["items"]) == min(int(limit), 3)


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1.5", ""])
def test_list_bad_limit_returns_400_naming_limit(invoke: Invoke, todos_table: str, limit: str) -> None:
    assert_error(list_page(invoke, limit=limit), 400, "VALIDATION_ERROR", mentions="'limit'")


@pytest.mark.parametrize(
    "token",
    [
        "garbage!!",
        "",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(b"[1]").decode(),
        base64.urlsafe_b64encode(json.dumps({"id": "not-a-uuid"}).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps({"id": str(uuid.uuid4()), "x": 1}).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps({"id": {"S": str(uuid.uuid4())}}).encode()).decode(),
    ],
    ids=["not-base64", "empty", "not-json", "not-object", "bad-id", "extra-key", "raw-dynamo-key"],
)
def test_list_bad_next_token_returns_400(invoke: Invoke, todos_table: str, token: str) -> None:
    assert_error(list_page(invoke, nextToken=token), 400, "VALIDATION_ERROR", mentions="nextToken")


def test_list_token_of_a_deleted_item_still_continues(invoke: Invoke, dynamodb: Any, seed: Any) -> None:
    ids = sorted(seed(4))
    # Tokens are positions, not items: the page after a since-deleted id is still served.
    dynamodb.delete_item(TableName="todos-test", Key={"id": {"S": ids[1]}})
    body = response_json(list_page(invoke, nextToken=encode_token(ids[1])))
    assert [i["id"] for i in body["items"]] == ids[2:]


def test_list_reads_one_bounded_scan_per_request(invoke: Invoke, seed: Any) -> None:
    from functions.common import aws

    seed(30)
    calls: list[dict[str, Any]] = []
    client = aws.client("dynamodb")
    client.meta.events.register("provide-client-params.dynamodb.*", lambda params, **_: calls.append(dict(params)))
    body = response_json(list_page(invoke, limit="10"))
    assert len(body["items"]) == 10
    assert len(calls) == 1 and calls[0]["Limit"] == 10 and "ExclusiveStartKey" not in calls[0]


# --- GET /todos/{id} ----------------------------------------------------------------------------------------


def test_get_returns_the_todo(invoke: Invoke, todos_table: str) -> None:
    made = created(invoke, "read me", description="soon")
    response = invoke(handlers.get_todo, "GET", f"/todos/{made['id']}", **item_kwargs(made["id"]))
    assert response["statusCode"] == 200 and response_json(response) == made
    assert response_headers(response)["access-control-allow-origin"] == "*"


def test_get_unknown_id_returns_404(invoke: Invoke, todos_table: str) -> None:
    todo_id = str(uuid.uuid4())
    response = invoke(handlers.get_todo, "GET", f"/todos/{todo_id}", **item_kwargs(todo_id))
    assert_error(response, 404, "NOT_FOUND", mentions=todo_id)


@pytest.mark.parametrize("todo_id", ["abc", "1700000000000", "9BF80240-938D-4926-8AB8-750D62224C0B"])
def test_get_non_uuid_id_returns_404(invoke: Invoke, todos_table: str, todo_id: str) -> None:
    response = invoke(handlers.get_todo, "GET", f"/todos/{todo_id}", **item_kwargs(todo_id))
    assert_error(response, 404, "NOT_FOUND")


# --- PUT /todos/{id} ----------------------------------------------------------------------------------------


def put(invoke: Invoke, todo_id: str, body: Any) -> dict[str, Any]:
    return invoke(handlers.update_todo, "PUT", f"/todos/{todo_id}", **item_kwargs(todo_id, body=body))


def test_put_partial_update_changes_only_given_fields_and_bumps_updated_at(
    invoke: Invoke, dynamodb: Any, todos_table: str
) -> None:
    made = created(invoke, "old title", description="keep me")
    response = put(invoke, made["id"], {"completed": True})

    assert response["statusCode"] == 200
    body = response_json(response)
    assert body["completed"] is True
    assert body["title"] == "old title" and body["description"] == "keep me"
    assert body["createdAt"] == made["createdAt"]
    assert iso_utc(body["updatedAt"]) > iso_utc(made["updatedAt"])
    item = stored(dynamodb, todos_table, made["id"])
    assert item is not None and item["completed"] == {"BOOL": True} and item["updatedAt"] == {"S": body["updatedAt"]}


def test_put_can_change_every_field_at_once(invoke: Invoke, todos_table: str) -> None:
    made = created(invoke)
    body = response_json(put(invoke, made["id"], {"title": "new", "description": "", "completed": True}))
    assert (body["title"], body["description"], body["completed"]) == ("new", "", True)


def test_put_returns_what_a_later_get_returns(invoke: Invoke, todos_table: str) -> None:
    made = created(invoke)
    updated = response_json(put(invoke, made["id"], {"title": "renamed"}))
    fetched = invoke(handlers.get_todo, "GET", f"/todos/{made['id']}", **item_kwargs(made["id"]))
    assert response_json(fetched) == updated


def test_put_unknown_id_returns_404_and_creates_nothing(invoke: Invoke, dynamodb: Any, todos_table: str) -> None:
    todo_id = str(uuid.uuid4())
    assert_error(put(invoke, todo_id, {"title": "ghost"}), 404, "NOT_FOUND", mentions=todo_id)
    assert count(dynamodb, todos_table) == 0


def test_put_non_uuid_id_returns_404(invoke: Invoke, dynamodb: Any, todos_table: str) -> None:
    assert_error(put(invoke, "1700000000000", {"title": "ghost"}), 404, "NOT_FOUND")
    assert count(dynamodb, todos_table) == 0


@pytest.mark.parametrize("body", [{}, None])
def test_put_with_nothing_to_update_returns_400(invoke: Invoke, todos_table: str, body: Any) -> None:
    made = created(invoke)
    assert_error(put(invoke, made["id"], body), 400, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"completed": "true"}, "completed"),
        ({"completed": 1}, "completed"),
        ({"completed": None}, "completed"),
        ({"title": 5}, "title"),
        ({"title": ""}, "title"),
        ({"title": "  "}, "title"),
        ({"title": "t" * 201}, "title"),
        ({"title": None}, "title"),
        ({"description": False}, "description"),
        ({"description": "d" * 2001}, "description"),
        ({"done": True}, "done"),
        ({"id": "other", "title": "x"}, "id"),
        ({"createdAt": "2020-01-01T00:00:00Z"}, "createdAt"),
    ],
)
def test_put_invalid_body_returns_400_naming_the_field_and_changes_nothing(
    invoke: Invoke, dynamodb: Any, todos_table: str, body: dict[str, Any], field: str
) -> None:
    made = created(invoke)
    before = stored(dynamodb, todos_table, made["id"])
    assert_error(put(invoke, made["id"], body), 400, "VALIDATION_ERROR", mentions=f"'{field}'")
    assert stored(dynamodb, todos_table, made["id"]) == before


def test_put_malformed_json_returns_400(invoke: Invoke, todos_table: str) -> None:
    made = created(invoke)
    assert_error(put(invoke, made["id"], '{"title": '), 400, "VALIDATION_ERROR", mentions="malformed JSON")


# --- DELETE /todos/{id} -------------------------------------------------------------------------------------


def delete(invoke: Invoke, todo_id: str) -> dict[str, Any]:
    return invoke(handlers.delete_todo, "DELETE", f"/todos/{todo_id}", **item_kwargs(todo_id))


def test_delete_returns_204_and_removes_the_item(invoke: Invoke, dynamodb: Any, todos_table: str) -> None:
    made = created(invoke)
    response = delete(invoke, made["id"])
    assert response["statusCode"] == 204 and response["body"] == ""
    assert response_headers(response)["access-control-allow-origin"] == "*"
    assert stored(dynamodb, todos_table, made["id"]) is None
    again = invoke(handlers.get_todo, "GET", f"/todos/{made['id']}", **item_kwargs(made["id"]))
    assert_error(again, 404, "NOT_FOUND")


def test_delete_twice_returns_404_the_second_time(invoke: Invoke, todos_table: str) -> None:
    made = created(invoke)
    assert delete(invoke, made["id"])["statusCode"] == 204
    assert_error(delete(invoke, made["id"]), 404, "NOT_FOUND")


def test_delete_unknown_id_returns_404_and_leaves_others(invoke: Invoke, dynamodb: Any, todos_table: str) -> None:
    created(invoke)
    assert_error(delete(invoke, str(uuid.uuid4())), 404, "NOT_FOUND")
    assert_error(delete(invoke, "not-an-id"), 404, "NOT_FOUND")
    assert count(dynamodb, todos_table) == 1


# --- cross-cutting ------------------------------------------------------------------------------------------


def test_event_for_another_route_gets_404_envelope_not_a_write(
    invoke: Invoke, dynamodb: Any, todos_table: str
) -> None:
    # The read-only list function must never perform a write, whatever event it is handed.
    response = invoke(handlers.list_todos, "POST", "/todos", resource="/todos", body={"title": "x"})
    assert_error(response, 404, "NOT_FOUND")
    assert count(dynamodb, todos_table) == 0


def test_preflight_options_returns_204_with_cors_headers(invoke: Invoke, todos_table: str) -> None:
    response = invoke(
        handlers.create_todo,
        "OPTIONS",
        "/todos",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert response["statusCode"] == 204
    headers = response_headers(response)
    assert headers["access-control-allow-origin"] == "*"
    assert "POST" in headers["access-control-allow-methods"]
    assert "content-type" in headers["access-control-allow-headers"].lower()


def test_missing_table_name_is_a_500_envelope_and_logged_by_name(
    invoke: Invoke, todos_table: str, monkeypatch: pytest.MonkeyPatch, todo_logs: Any
) -> None:
    from functions.todos.settings import get_env

    monkeypatch.delenv("TABLE_NAME")
    get_env.cache_clear()
    response = list_page(invoke)
    assert_error(response, 500, "INTERNAL_ERROR")
    assert "TABLE_NAME" not in response["body"]  # internals stay in the logs
    errors = [line for line in todo_logs() if line["level"] == "ERROR"]
    assert errors and "missing environment variables: TABLE_NAME" in errors[0]["exception"]


def test_logs_are_json_with_request_ids(todos_table: str, todo_logs: Any) -> None:
    from tests.support.events import api_event, lambda_context

    event = api_event("POST", "/todos", body={"title": "logged"}, request_id="req-abc-123")
    context = lambda_context("create")
    assert handlers.create_todo(event, context)["statusCode"] == 201
    created_line = next(line for line in todo_logs() if line["message"] == "created todo")
    assert created_line["correlation_id"] == "req-abc-123"
    assert created_line["function_request_id"] == context.aws_request_id
    assert created_line["service"] == "todos" and created_line["level"] == "INFO"


def test_each_handler_calls_only_the_table_actions_its_policy_grants(invoke: Invoke, todos_table: str) -> None:
    from functions.common import aws

    calls: list[str] = []
    aws.client("dynamodb").meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: calls.append(f"dynamodb:{model.name}")
    )
    todo_id = created(invoke)["id"]
    assert calls == ["dynamodb:PutItem"]
    steps = {
        "create_todo": lambda: create(invoke, {"title": "second"}),
        "list_todos": lambda: list_page(invoke),
        "get_todo": lambda: invoke(handlers.get_todo, "GET", f"/todos/{todo_id}", **item_kwargs(todo_id)),
        "update_todo": lambda: put(invoke, todo_id, {"completed": True}),
        "delete_todo": lambda: delete(invoke, todo_id),
    }
    assert set(steps) == set(TABLE_ACTIONS)
    for name, step in steps.items():
        calls.clear()
        assert step()["statusCode"] in (200, 201, 204), name
        assert calls and set(calls) <= set(TABLE_ACTIONS[name]), (name, calls)

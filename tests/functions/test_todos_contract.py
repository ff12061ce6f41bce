"""Every TODO response matches the OpenAPI document the gateway, the twin and the fuzz tests read."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from functions.todos import handlers
from tests.functions.conftest import Invoke
from tests.support.events import response_json

DOCUMENT = yaml.safe_load((Path(__file__).resolve().parents[2] / "infra" / "openapi.yaml").read_text())
ENTRY_POINTS = {
    ("/todos", "get"): handlers.list_todos,
    ("/todos", "post"): handlers.create_todo,
    ("/todos/{id}", "get"): handlers.get_todo,
    ("/todos/{id}", "put"): handlers.update_todo,
    ("/todos/{id}", "delete"): handlers.delete_todo,
}


def check(route: str, method: str, response: dict[str, Any]) -> None:
    """The status is documented for this operation and the body validates against its schema."""
    operation = DOCUMENT["paths"][route][method]
    status = str(response["statusCode"])
    assert status in operation["responses"], f"{method.upper()} {route} answered undocumented {status}"
    documented = operation["responses"][status]
    if "$ref" in documented:
        documented = DOCUMENT["components"]["responses"][documented["$ref"].rsplit("/", 1)[-1]]
    content = documented.get("content")
    if content is None:
        assert response["body"] == "", f"{status} must have no body"
        return
    schema = {**content["application/json"]["schema"], "components": DOCUMENT["components"]}
    jsonschema.validate(response_json(response), schema)


def test_every_documented_todo_operation_has_an_entry_point() -> None:
    documented = {
        (path, method)
        for path, item in DOCUMENT["paths"].items()
        if path.startswith("/todos")
        for method in item
        if method in {"get", "post", "put", "delete", "patch"}
    }
    assert documented == set(ENTRY_POINTS)


def test_todo_responses_match_the_openapi_document(invoke: Invoke, seed: Any) -> None:
    seed(3)
    item = "/todos/{id}"

    def run(route: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = invoke(ENTRY_POINTS[(route, method)], method.upper(), path, resource=route, **kwargs)
        check(route, method, response)
        return response

    made = response_json(run("/todos", "post", "/todos", body={"title": "contract"}))
    run("/todos", "post", "/todos", body={"title": 1})
    first = response_json(run("/todos", "get", "/todos", query={"limit": "2"}))
    run("/todos", "get", "/todos", query={"limit": "2", "nextToken": first["nextToken"]})
    run("/todos", "get", "/todos", query={"nextToken": "bogus"})
    params = {"path_parameters": {"id": made["id"]}}
    run(item, "get", f"/todos/{made['id']}", **params)
    run(item, "put", f"/todos/{made['id']}", body={"completed": True}, **params)
    run(item, "put", f"/todos/{made['id']}", body={}, **params)
    run(item, "delete", f"/todos/{made['id']}", **params)
    missing = str(uuid.uuid4())
    for method in ("get", "delete"):
        run(item, method, f"/todos/{missing}", path_parameters={"id": missing})
    run(item, "put", f"/todos/{missing}", body={"title": "x"}, path_parameters={"id": missing})


@pytest.mark.parametrize("name", ["TodoCreate", "TodoUpdate"])
def test_request_schemas_forbid_unknown_fields_like_the_models(name: str) -> None:
    from functions.todos import models

    schema = DOCUMENT["components"]["schemas"][name]
    model = getattr(models, name)
    assert schema["additionalProperties"] is False and model.model_config["extra"] == "forbid"
    assert set(schema["properties"]) == set(model.model_fields)

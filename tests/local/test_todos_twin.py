"""The dev stack in the twin, driven over HTTP like the seed's curl commands (only the URL changes)."""

from __future__ import annotations

import json

import boto3
import pytest
import requests

from tests.local.conftest import RunningTwin

pytestmark = pytest.mark.slow


def _create(api: str, title: str, **extra: object) -> dict:
    r = requests.post(f"{api}/todos", json={"title": title, **extra}, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()


def test_seed_curl_flow_creates_reads_updates_and_deletes_a_todo(dev_twin: RunningTwin) -> None:
    api = dev_twin.api_url
    r = requests.post(f"{api}/todos", data='{"title":"Buy groceries"}',
                      headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 201
    todo = r.json()
    assert todo["title"] == "Buy groceries" and todo["completed"] is False
    assert r.headers["Location"].endswith(f"/todos/{todo['id']}")

    got = requests.get(f"{api}/todos/{todo['id']}", timeout=30)
    assert got.status_code == 200 and got.json() == todo
    listed = requests.get(f"{api}/todos", timeout=30).json()
    assert todo["id"] in [t["id"] for t in listed["items"]]

    put = requests.put(f"{api}/todos/{todo['id']}", json={"completed": True}, timeout=30)
    assert put.status_code == 200
    assert put.json()["completed"] is True and put.json()["title"] == "Buy groceries"

    deleted = requests.delete(f"{api}/todos/{todo['id']}", timeout=30)
    assert deleted.status_code == 204 and deleted.content == b""
    gone = requests.get(f"{api}/todos/{todo['id']}", timeout=30)
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "NOT_FOUND"


def test_the_item_is_stored_in_the_graphs_table(dev_twin: RunningTwin) -> None:
    todo = _create(dev_twin.api_url, "stored where the graph says")
    outputs = json.loads((dev_twin.state_dir / "outputs.json").read_text())
    ddb = boto3.client("dynamodb", endpoint_url=dev_twin.aws_url, region_name="eu-west-1")
    item = ddb.get_item(TableName=outputs["todosTableName"], Key={"id": {"S": todo["id"]}})["Item"]
    assert item["title"]["S"] == "stored where the graph says"


def test_list_pages_through_every_todo_once(dev_twin: RunningTwin) -> None:
    api = dev_twin.api_url
    made = {_create(api, f"page item {i}")["id"] for i in range(7)}
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 3}
        if token:
            params["nextToken"] = token
        r = requests.get(f"{api}/todos", params=params, timeout=30)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= 3
        seen += [t["id"] for t in page["items"]]
        pages += 1
        token = page.get("nextToken")
        if not token:
            break
    assert made <= set(seen)
    assert len(seen) == len(set(seen)), "an item came back on two pages"
    assert pages >= 3


@pytest.mark.parametrize(("body", "needle"), [
    ({}, "missing required properties"),
    ({"title": "ok", "owner": "me"}, "not allowed"),
    ({"title": ""}, "too short"),
    ({"title": "   "}, "regex"),
    ({"title": 42}, "instance type (integer)"),
])
def test_invalid_create_body_is_rejected_by_the_gateway_with_the_envelope(
        dev_twin: RunningTwin, body: dict, needle: str) -> None:
    r = requests.post(f"{dev_twin.api_url}/todos", json=body, timeout=30)
    assert r.status_code == 400
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    error = r.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert needle in error["message"]


def test_malformed_json_is_a_400_envelope(dev_twin: RunningTwin) -> None:
    r = requests.post(f"{dev_twin.api_url}/todos", data="{not json", headers={"Content-Type": "application/json"},
                      timeout=30)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "VALIDATION_ERROR"


def test_empty_update_is_rejected(dev_twin: RunningTwin) -> None:
    todo = _create(dev_twin.api_url, "to update")
    r = requests.put(f"{dev_twin.api_url}/todos/{todo['id']}", json={}, timeout=30)
    assert r.status_code == 400
    assert "too few properties" in r.json()["error"]["message"]


def test_unknown_id_is_404_for_get_put_and_delete(dev_twin: RunningTwin) -> None:
    url = f"{dev_twin.api_url}/todos/does-not-exist"
    for response in (requests.get(url, timeout=30), requests.put(url, json={"completed": True}, timeout=30),
                     requests.delete(url, timeout=30)):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "NOT_FOUND"


def test_bad_page_size_is_a_400_from_the_function(dev_twin: RunningTwin) -> None:
    r = requests.get(f"{dev_twin.api_url}/todos", params={"limit": 0}, timeout=30)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "VALIDATION_ERROR"


def test_cors_preflight_answers_from_the_rendered_mock_integration(dev_twin: RunningTwin) -> None:
    r = requests.options(f"{dev_twin.api_url}/todos/abc", headers={
        "Origin": "http://localhost:8080", "Access-Control-Request-Method": "PUT"}, timeout=30)
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert set(r.headers["Access-Control-Allow-Methods"].split(",")) == {"GET", "PUT", "DELETE", "OPTIONS"}
    assert "Content-Type" in r.headers["Access-Control-Allow-Headers"]
    simple = requests.get(f"{dev_twin.api_url}/todos", headers={"Origin": "http://localhost:8080"}, timeout=30)
    assert simple.headers["Access-Control-Allow-Origin"] == "*"


def test_unknown_route_or_method_is_403_missing_authentication_token(dev_twin: RunningTwin) -> None:
    for r in (requests.get(f"{dev_twin.api_url}/nothing-here", timeout=30),
              requests.patch(f"{dev_twin.api_url}/todos", json={}, timeout=30)):
        assert r.status_code == 403
        assert r.json()["error"]["message"] == "Missing Authentication Token"


def test_outputs_are_the_graphs_exports_with_local_urls(dev_twin: RunningTwin) -> None:
    result = dev_twin.cli("outputs")
    assert result.returncode == 0, result.stderr
    outputs = json.loads(result.stdout)
    assert outputs["apiUrl"] == dev_twin.api_url
    assert outputs["todosTableName"].startswith("todos-table-")
    assert json.loads((dev_twin.state_dir / "outputs.json").read_text()) == outputs


def test_status_shows_functions_and_item_counts(dev_twin: RunningTwin) -> None:
    todo = _create(dev_twin.api_url, "counted")
    result = dev_twin.cli("status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["running"] is True
    assert status["endpoints"]["apiUrl"] == dev_twin.api_url
    fns = status["functions"]
    assert fns["serverless-mesh-dev-todos-get"]["handler"] == "functions.todos.handlers.get_todo"
    assert all(f["alive"] for f in fns.values())
    table = next(t for t in status["tables"] if t.startswith("todos-table-"))
    assert status["tables"][table] >= 1
    assert todo["id"]


def test_plan_places_every_resource_and_skips_none(dev_twin: RunningTwin) -> None:
    result = dev_twin.cli("plan", "--json")
    assert result.returncode == 0, result.stderr
    placements = json.loads(result.stdout)
    by_name = {p["name"]: p for p in placements}
    assert by_name["todos-table"]["engine"] == "moto"
    assert by_name["todos-get-function"]["engine"] == "lambda"
    assert by_name["api-rest-api"]["engine"] == "gateway"
    assert by_name["todos-get-role"]["action"] == "checked"
    assert by_name["api-throttling"]["engine"] == "gateway"  # stage throttling: the gateway's token bucket
    assert "token bucket of 100/s, burst 200 on */* (429 beyond)" in by_name["api-throttling"]["detail"]
    assert not [p for p in placements if p["action"] == "unknown"]

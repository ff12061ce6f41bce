"""The local gateway and Lambda workers, seen through a small program (tests/local/programs/echo_api.py) built from
the project's own `HttpApi` and `LambdaFunction` components, with handlers that echo what they received."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import pytest
import requests

from tests.local.conftest import PROGRAMS, RunningTwin, shared_twin

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def echo_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTwin]:
    with shared_twin(tmp_path_factory, "echo_api", program=PROGRAMS / "echo_api.py") as twin:
        yield twin


def _echo(r: requests.Response) -> dict:
    assert r.status_code == 200, r.text
    return r.json()


def test_proxy_event_has_the_v1_shape(echo_twin: RunningTwin) -> None:
    r = requests.get(f"{echo_twin.api_url}/echo/ab%20c?n=2&tag=x&tag=y", headers={"X-Multi": "1"}, timeout=30)
    event = _echo(r)["event"]
    assert event["resource"] == "/echo/{id}"
    assert event["path"] == "/echo/ab c"
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == {"id": "ab c"}
    assert event["queryStringParameters"] == {"n": "2", "tag": "y"}
    assert event["multiValueQueryStringParameters"] == {"n": ["2"], "tag": ["x", "y"]}
    assert event["headers"]["X-Multi"] == "1" and event["multiValueHeaders"]["X-Multi"] == ["1"]
    assert event["body"] is None and event["isBase64Encoded"] is False
    ctx = event["requestContext"]
    assert ctx["stage"] == "api" and ctx["resourcePath"] == "/echo/{id}" and ctx["httpMethod"] == "GET"
    assert ctx["path"] == "/api/echo/ab c"
    assert ctx["identity"]["sourceIp"] == "127.0.0.1"
    assert ctx["requestId"] == r.headers["x-amzn-RequestId"]
    assert event["stageVariables"] is None


def test_response_headers_and_multi_value_headers_are_mapped(echo_twin: RunningTwin) -> None:
    r = requests.get(f"{echo_twin.api_url}/echo/a", timeout=30)
    assert r.headers["X-Echo"] == "1"
    assert r.raw.headers.getlist("Set-Cookie") == ["a=1", "b=2"]


def test_worker_has_exactly_the_graphs_environment_plus_the_emulator(echo_twin: RunningTwin) -> None:
    body = _echo(requests.get(f"{echo_twin.api_url}/echo/a", timeout=30))
    env = body["env"]
    assert env["GREETING"] == "hello"
    assert env["AWS_ENDPOINT_URL"] == echo_twin.aws_url
    assert env["AWS_ACCESS_KEY_ID"] == "testing" and env["AWS_REGION"] == "eu-west-1"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "serverless-mesh-dev-echo"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert "HOME" not in env and "VIRTUAL_ENV" not in env, "the twin's own environment leaked into the function"
    assert body["context"]["memoryLimitInMB"] == 128
    assert 0 < body["context"]["remainingMs"] <= 3000


def test_json_body_passes_validation_and_reaches_the_function(echo_twin: RunningTwin) -> None:
    event = _echo(requests.post(f"{echo_twin.api_url}/echo/a", json={"name": "x", "count": 2}, timeout=30))["event"]
    assert event["body"] == '{"name": "x", "count": 2}'
    assert event["isBase64Encoded"] is False


@pytest.mark.parametrize(("body", "needle"), [
    ({"count": 1}, 'object has missing required properties (["name"])'),
    ({"name": "x", "extra": True}, 'not allowed by the schema: ["extra"]'),
    ({"name": ""}, "too short"),
    ({"name": " "}, 'ECMA 262 regex "\\\\S" does not match'),
    ({"name": "x", "count": "2"}, "instance type (string)"),
])
def test_body_validation_answers_the_gateway_response_envelope(
        echo_twin: RunningTwin, body: dict, needle: str) -> None:
    r = requests.post(f"{echo_twin.api_url}/echo/a", json=body, timeout=30)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "VALIDATION_ERROR"
    assert needle in r.json()["error"]["message"]
    assert r.headers["Access-Control-Allow-Origin"] == "*"


def test_missing_required_query_parameter_is_rejected(echo_twin: RunningTwin) -> None:
    r = requests.get(f"{echo_twin.api_url}/needs-query", timeout=30)
    assert r.status_code == 400
    assert r.json()["error"] == {"code": "VALIDATION_ERROR",
                                 "message": "Missing required request parameters: [q]"}
    assert requests.get(f"{echo_twin.api_url}/needs-query?q=1", timeout=30).status_code == 200


def test_parameter_values_are_not_schema_checked_like_api_gateway(echo_twin: RunningTwin) -> None:
    # API Gateway's validator checks presence only; n=99 violates the schema but reaches the function.
    assert requests.get(f"{echo_twin.api_url}/echo/a?n=99", timeout=30).status_code == 200


def test_binary_request_body_arrives_base64_encoded(echo_twin: RunningTwin) -> None:
    payload = bytes(range(256))
    r = requests.post(f"{echo_twin.api_url}/raw", data=payload,
                      headers={"Content-Type": "application/octet-stream"}, timeout=30)
    event = _echo(r)["event"]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload


def test_base64_response_body_is_decoded(echo_twin: RunningTwin) -> None:
    r = requests.get(f"{echo_twin.api_url}/binary", timeout=30)
    assert r.status_code == 200
    assert r.content == bytes(range(256))
    assert r.headers["Content-Type"] == "application/octet-stream"


def test_function_error_is_502(echo_twin: RunningTwin) -> None:
    r = requests.get(f"{echo_twin.api_url}/fail", timeout=30)
    assert r.status_code == 502
    assert r.json()["error"] == {"code": "INTERNAL", "message": "Internal server error"}


def test_malformed_proxy_response_is_502(echo_twin: RunningTwin) -> None:
    assert requests.get(f"{echo_twin.api_url}/malformed", timeout=30).status_code == 502


def test_run_past_the_timeout_is_504_and_a_fresh_worker_serves_the_next_call(echo_twin: RunningTwin) -> None:
    started = time.monotonic()
    r = requests.get(f"{echo_twin.api_url}/slow", timeout=30)
    assert r.status_code == 504
    assert r.json()["error"]["message"] == "Endpoint request timed out"
    assert time.monotonic() - started < 10, "the 1 s timeout was not enforced"
    assert "Task timed out after 1.00 seconds" in echo_twin.output()
    again = requests.get(f"{echo_twin.api_url}/slow", timeout=30)
    assert again.status_code == 504  # a replacement worker ran it (and timed out again)


def test_authorizer_rejects_missing_and_bad_tokens(echo_twin: RunningTwin) -> None:
    missing = requests.get(f"{echo_twin.api_url}/private", timeout=30)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "UNAUTHORIZED"
    bad = requests.get(f"{echo_twin.api_url}/private", headers={"Authorization": "garbage"}, timeout=30)
    assert bad.status_code == 401
    denied = requests.get(f"{echo_twin.api_url}/private", headers={"Authorization": "deny"}, timeout=30)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "FORBIDDEN"


def test_authorizer_context_reaches_the_function_and_is_cached_per_token(echo_twin: RunningTwin) -> None:
    first = _echo(requests.get(f"{echo_twin.api_url}/private", headers={"Authorization": "allow-ana"}, timeout=30))
    second = _echo(requests.get(f"{echo_twin.api_url}/private", headers={"Authorization": "allow-ana"}, timeout=30))
    other = _echo(requests.get(f"{echo_twin.api_url}/private", headers={"Authorization": "allow-bo"}, timeout=30))
    auth = first["event"]["requestContext"]["authorizer"]
    assert auth["userId"] == "ana" and auth["principalId"] == "ana"
    assert second["event"]["requestContext"]["authorizer"]["issuedAt"] == auth["issuedAt"], "not cached"
    assert other["event"]["requestContext"]["authorizer"]["userId"] == "bo"
    assert other["event"]["requestContext"]["authorizer"]["issuedAt"] != auth["issuedAt"]

"""The gateway's rules in-process, over the body Pulumi renders from infra/openapi.yaml: routing, validators,
gateway responses, authorizer policy evaluation and caching (with a fake clock and a recording function)."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from infra import openapi
from local.function_spec import InvokeResult
from local.gateway.handler import Gateway
from local.gateway.iam import allows
from local.gateway.messages import Request
from local.gateway.responses import GatewayError
from local.gateway.spec import RestApi
from local.processes import LogSink

ARN = "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:1:function:{}/invocations"


def _body() -> dict[str, Any]:
    spec = openapi.load_spec()
    arns = {name: ARN.format(name) for name in openapi.function_names(spec)}
    return openapi.render(spec, arns, title="t", authorizer_uri=ARN.format("authorizer"), authorizer_cache_seconds=60)


@dataclass
class RecordingFunction:
    """Answers every invocation with `answer` and keeps the events it got."""

    answer: Any
    events: list[Any] = field(default_factory=list)

    def invoke(self, event: Any, *, timeout: float | None = None) -> InvokeResult:
        self.events.append(event)
        if isinstance(self.answer, Exception):
            return InvokeResult("r", ok=False, error={"errorMessage": str(self.answer), "errorType": "Exception"})
        return InvokeResult("r", ok=True, payload=self.answer)


@dataclass
class Functions:
    by_uri: dict[str, RecordingFunction]

    def find(self, ref: str) -> RecordingFunction:
        return self.by_uri[ref]


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def _request(method: str, path: str, *, query: str = "", body: bytes = b"",
             headers: list[tuple[str, str]] | None = None) -> Request:
    return Request(method, path, query, headers or [("Content-Type", "application/json")], body, "127.0.0.1")


def _gateway(strict: bool = False, functions: dict[str, RecordingFunction] | None = None,
             clock: Clock | None = None) -> Gateway:
    api = RestApi.from_body(_body(), api_id="abc", stage="api", region="eu-west-1")
    return Gateway(api, Functions(functions or {}), LogSink(io.StringIO()),  # type: ignore[arg-type]
                   strict_parameters=strict, clock=clock or Clock())


def test_routes_match_templates_and_decode_path_parameters() -> None:
    api = RestApi.from_body(_body(), api_id="abc", stage="api", region="eu-west-1")
    route, params = api.match("GET", "/todos/a%2Fb") or (None, {})
    assert route is not None and route.template == "/todos/{id}" and params == {"id": "a/b"}
    assert api.match("GET", "/todos/a/b") is None
    assert api.match("PATCH", "/todos") is None


def test_strict_parameters_check_query_values_against_their_schema() -> None:
    lenient, strict = _gateway(), _gateway(strict=True)
    route, params = lenient.api.match("GET", "/todos") or (None, {})
    assert route is not None
    lenient.validate(route, _request("GET", "/todos", query="limit=0"), params)
    with pytest.raises(GatewayError) as err:
        strict.validate(route, _request("GET", "/todos", query="limit=0"), params)
    assert err.value.response_type == "BAD_REQUEST_PARAMETERS"
    assert "lower than the required minimum (minimum: 1, found: 0)" in err.value.validation


def test_validation_errors_render_as_valid_json_envelopes_even_with_quotes() -> None:
    gateway = _gateway()
    response = gateway.handle(_request("POST", "/todos", body=b'{"title": "x", "a\\"b": 1}'))
    assert response.status == 400
    error = json.loads(response.body)["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert 'not allowed by the schema: ["a\\"b"]' in error["message"]


def test_body_of_another_media_type_is_not_validated_against_the_json_schema() -> None:
    create = RecordingFunction({"statusCode": 201, "body": "{}"})
    gateway = _gateway(functions={ARN.format("todos-create"): create})
    response = gateway.handle(_request("POST", "/todos", body=b"plain", headers=[("Content-Type", "text/plain")]))
    assert response.status == 201
    assert create.events[0]["body"] == "plain"


def test_policy_evaluation_deny_wins_and_wildcards_match() -> None:
    arn = "arn:aws:execute-api:eu-west-1:1:abc/api/GET/orders/7"
    allow = {"Effect": "Allow", "Action": "execute-api:Invoke",
             "Resource": "arn:aws:execute-api:eu-west-1:1:abc/api/*/*"}
    deny = {"Effect": "Deny", "Action": ["execute-api:*"], "Resource": [arn]}
    assert allows({"Statement": [allow]}, arn)
    assert not allows({"Statement": [allow, deny]}, arn)
    assert not allows({"Statement": [{**allow, "Resource": "arn:aws:execute-api:eu-west-1:1:other/*"}]}, arn)


def _secured_gateway(clock: Clock, authorizer: RecordingFunction, target: RecordingFunction) -> Gateway:
    body = _body()
    body["paths"]["/todos"]["get"]["security"] = [{openapi.AUTHORIZER_NAME: []}]
    api = RestApi.from_body(body, api_id="abc", stage="api", region="eu-west-1")
    fns = Functions({ARN.format("authorizer"): authorizer, ARN.format("todos-list"): target})
    return Gateway(api, fns, LogSink(io.StringIO()), clock=clock)  # type: ignore[arg-type]


def test_authorizer_answer_is_cached_per_token_until_its_ttl() -> None:
    clock = Clock()
    policy = {"principalId": "u1", "context": {"userId": "u1"}, "policyDocument": {"Statement": [
        {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "arn:aws:execute-api:*"}]}}
    authorizer = RecordingFunction(policy)
    target = RecordingFunction({"statusCode": 200, "body": "[]"})
    gateway = _secured_gateway(clock, authorizer, target)
    headers = [("Authorization", "Bearer t1")]
    assert gateway.handle(_request("GET", "/todos", headers=headers)).status == 200
    assert gateway.handle(_request("GET", "/todos", headers=headers)).status == 200
    assert len(authorizer.events) == 1
    assert target.events[-1]["requestContext"]["authorizer"] == {"userId": "u1", "principalId": "u1"}
    clock.now += 61
    assert gateway.handle(_request("GET", "/todos", headers=headers)).status == 200
    assert len(authorizer.events) == 2
    assert authorizer.events[0]["type"] == "REQUEST"
    assert authorizer.events[0]["methodArn"] == "arn:aws:execute-api:eu-west-1:123456789012:abc/api/GET/todos"


def test_authorizer_unauthorized_is_401_and_other_errors_are_500() -> None:
    target = RecordingFunction({"statusCode": 200, "body": "[]"})
    no_token = _secured_gateway(Clock(), RecordingFunction(Exception("Unauthorized")), target)
    assert no_token.handle(_request("GET", "/todos")).status == 401
    rejected = no_token.handle(_request("GET", "/todos", headers=[("Authorization", "x")]))
    assert rejected.status == 401 and json.loads(rejected.body)["error"]["code"] == "UNAUTHORIZED"
    broken = _secured_gateway(Clock(), RecordingFunction(Exception("secret unreadable")), target)
    assert broken.handle(_request("GET", "/todos", headers=[("Authorization", "x")])).status == 500
    assert target.events == []

"""functions.common: the one error mapping every HTTP function shares, the env loader, the client cache."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from functions.common import aws, errors
from functions.common.http import make_resolver, parse_body, parse_query
from functions.common.settings import ConfigurationError, env_names, load_env
from tests.support.events import api_event, lambda_context, response_headers, response_json


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str
    count: int = 0


class Query(BaseModel):
    size: int = Field(default=1, ge=1)


app = make_resolver("common-test")


@app.post("/things")
def _post() -> dict[str, Any]:
    return parse_body(app, Body).model_dump()


@app.get("/things")
def _get() -> dict[str, Any]:
    return parse_query(app, Query).model_dump()


@app.get("/raise/<kind>")
def _raise(kind: str) -> dict[str, Any]:
    classes = {cls.__name__: cls for cls in errors.DomainError.__subclasses__()}
    if kind == "ServiceUnavailable":
        raise errors.ServiceUnavailable("busy", retry_after=7)
    if kind in classes:
        raise classes[kind]("domain says no")
    raise RuntimeError("secret internal detail")


def call(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("headers", {"Origin": "https://app.example.com"})
    return app.resolve(api_event(method, path, **kwargs), lambda_context())


def envelope(response: dict[str, Any]) -> tuple[int, str, str]:
    body = response_json(response)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert response_headers(response)["access-control-allow-origin"] == "*"
    return response["statusCode"], body["error"]["code"], body["error"]["message"]


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("ValidationFailed", 400, "VALIDATION_ERROR"),
        ("Unauthorized", 401, "UNAUTHORIZED"),
        ("Forbidden", 403, "FORBIDDEN"),
        ("NotFound", 404, "NOT_FOUND"),
        ("Conflict", 409, "CONFLICT"),
        ("Unprocessable", 422, "UNPROCESSABLE"),
        ("ServiceUnavailable", 503, "SERVICE_UNAVAILABLE"),
    ],
)
def test_domain_errors_map_to_their_status_and_code(kind: str, status: int, code: str) -> None:
    assert envelope(call("GET", f"/raise/{kind}"))[:2] == (status, code)


def test_service_unavailable_sets_retry_after() -> None:
    assert response_headers(call("GET", "/raise/ServiceUnavailable"))["retry-after"] == "7"


def test_unexpected_exception_is_a_500_envelope_without_details() -> None:
    status, code, message = envelope(call("GET", "/raise/Boom"))
    assert (status, code) == (500, "INTERNAL_ERROR") and "secret" not in message


def test_unknown_route_is_a_404_envelope() -> None:
    assert envelope(call("DELETE", "/nowhere"))[:2] == (404, "NOT_FOUND")


def test_pydantic_errors_name_every_field() -> None:
    status, code, message = envelope(call("POST", "/things", body={"name": 3, "count": "2", "extra": True}))
    assert (status, code) == (400, "VALIDATION_ERROR")
    assert "'name'" in message and "'count'" in message and "unknown field 'extra'" in message


def test_parse_body_accepts_a_valid_body() -> None:
    response = call("POST", "/things", body={"name": "a", "count": 2})
    assert response["statusCode"] == 200 and response_json(response) == {"name": "a", "count": 2}


def test_parse_query_converts_strings_and_names_bad_parameters() -> None:
    assert response_json(call("GET", "/things", query={"size": "3"})) == {"size": 3}
    status, _, message = envelope(call("GET", "/things", query={"size": "0"}))
    assert status == 400 and "'size'" in message


def test_no_cors_headers_without_an_origin() -> None:
    # Browsers always send Origin on CORS requests; server-to-server calls get no CORS noise.
    response = app.resolve(api_event("GET", "/raise/NotFound", headers={}), lambda_context())
    assert response["statusCode"] == 404 and "access-control-allow-origin" not in response_headers(response)


class SampleEnv(BaseModel):
    TABLE_NAME: str = Field(min_length=1)
    LOG_LEVEL: Literal["INFO", "DEBUG"] = "INFO"


def test_load_env_reads_only_declared_names() -> None:
    env = load_env(SampleEnv, {"TABLE_NAME": "t", "OTHER": "x"})
    assert env == SampleEnv(TABLE_NAME="t") and env_names(SampleEnv) == {"TABLE_NAME", "LOG_LEVEL"}


def test_load_env_names_missing_and_invalid_variables() -> None:
    with pytest.raises(ConfigurationError, match="missing environment variables: TABLE_NAME"):
        load_env(SampleEnv, {})
    with pytest.raises(ConfigurationError, match="LOG_LEVEL='LOUD'"):
        load_env(SampleEnv, {"TABLE_NAME": "t", "LOG_LEVEL": "LOUD"})


def test_clients_are_cached_until_reset(aws_endpoint: str) -> None:
    aws.reset()
    first = aws.client("dynamodb")
    assert aws.client("dynamodb") is first and aws.resource("s3") is aws.resource("s3")
    assert first.meta.endpoint_url == aws_endpoint  # botocore honours AWS_ENDPOINT_URL
    aws.reset()
    assert aws.client("dynamodb") is not first
    aws.reset()

"""The HTTP edge of every API Gateway (REST, payload v1) function.

`make_resolver` builds the Powertools resolver with CORS and the one error mapping of the project: every error
leaves as `{"error": {"code": ..., "message": ...}}` with the CORS headers (Powertools adds them to any response
of a CORS-enabled route, error handlers included). Statuses come from exception *types*, never message text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, TypeVar

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError, ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from functions.common.errors import DomainError, ServiceUnavailable, ValidationFailed
from functions.common.logging import get_logger

M = TypeVar("M", bound=BaseModel)

__all__ = [
    "APIGatewayRestResolver",
    "CORSConfig",
    "Response",
    "default_cors",
    "error_response",
    "json_response",
    "make_resolver",
    "parse_body",
    "parse_query",
    "validation_failed",
]


def default_cors() -> CORSConfig:
    """CORS for browser clients: any origin, `Location` readable (POST answers with it), preflight cached 10 min."""
    return CORSConfig(allow_origin="*", expose_headers=["Location"], max_age=600)


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response; `body=None` gives an empty body (e.g. 204)."""
    if body is None:
        return Response(status_code=status, content_type=None, body="", headers=dict(headers or {}))
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        headers=dict(headers or {}),
    )


def error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """The project's error envelope."""
    return json_response(status, {"error": {"code": code, "message": message}}, headers)


def _field_of(loc: tuple[int | str, ...], prefix: str | None) -> str | None:
    parts = [str(p) for p in loc]
    if prefix:
        parts.insert(0, prefix)
    return ".".join(parts) or None


def validation_failed(exc: ValidationError | RequestValidationError, *, prefix: str | None = None) -> ValidationFailed:
    """Turn pydantic's errors into one `ValidationFailed` whose message names every bad field (and `field` the first).

    The wording is chosen from pydantic's error *type*, never parsed from its message.
    """
    messages: list[str] = []
    first: str | None = None
    for err in exc.errors():
        field = _field_of(tuple(err.get("loc", ())), prefix)
        first = first or field
        kind = err.get("type")
        if kind == "extra_forbidden":
            messages.append(f"unknown field '{field}'")
        elif kind == "missing":
            messages.append(f"field '{field}' is required")
        elif kind == "value_error" and "error" in err.get("ctx", {}):
            messages.append(f"field '{field}': {err['ctx']['error']}")
        elif field:
            messages.append(f"field '{field}': {err.get('msg', 'is invalid')}")
        else:
            messages.append(str(err.get("msg", "invalid request")))
    return ValidationFailed("; ".join(messages) or "invalid request", field=first)


def parse_body(app: APIGatewayRestResolver, model: type[M]) -> M:
    """The request body validated as `model`.

    Raises `ValidationFailed` (400) for a missing body, malformed JSON, a non-object body, and every pydantic
    error (unknown field, wrong type, missing field), with the field named in the message.
    """
    event = app.current_event
    try:
        raw = event.decoded_body
    except ValueError:  # invalid base64 or UTF-8
        raise ValidationFailed("request body is not valid UTF-8 or base64", field="body") from None
    if raw is None or not raw.strip():
        raise ValidationFailed("request body is required (a JSON object)", field="body")
    try:
        data = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError; never let it become a 500
        raise ValidationFailed(f"malformed JSON body: {exc.args[0] if exc.args else exc}", field="body") from None
    if not isinstance(data, dict):
        raise ValidationFailed(f"request body must be a JSON object, got {type(data).__name__}", field="body")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_failed(exc) from None


def parse_query(app: APIGatewayRestResolver, model: type[M]) -> M:
    """The query string validated as `model` (values arrive as strings; the last of repeated keys wins)."""
    params = app.current_event.query_string_parameters or {}
    try:
        return model.model_validate(dict(params))
    except ValidationError as exc:
        raise validation_failed(exc) from None


def make_resolver(
    service: str, *, cors: CORSConfig | None = None, logger: Logger | None = None
) -> APIGatewayRestResolver:
    """A REST (v1 proxy) resolver with CORS and the project's error mapping registered."""
    app = APIGatewayRestResolver(cors=cors or default_cors())
    log = logger or get_logger(service)

    @app.exception_handler(DomainError)
    def _domain(exc: DomainError) -> Response:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, ServiceUnavailable) else None
        if exc.status >= 500:
            log.error("domain error", extra={"code": exc.code, "error_message": exc.message})
        else:
            log.info("request rejected", extra={"code": exc.code, "status": exc.status, "field": exc.field})
        return error_response(exc.status, exc.code, exc.message, headers)

    @app.exception_handler(ValidationError)
    def _pydantic(exc: ValidationError) -> Response:
        return _domain(validation_failed(exc))

    @app.exception_handler(RequestValidationError)
    def _openapi_validation(exc: RequestValidationError) -> Response:
        return _domain(validation_failed(exc))

    @app.exception_handler(json.JSONDecodeError)
    def _bad_json(exc: json.JSONDecodeError) -> Response:
        return _domain(ValidationFailed(f"malformed JSON body: {exc.msg}", field="body"))

    @app.not_found
    def _no_route(exc: NotFoundError) -> Response:
        event = app.current_event
        return error_response(404, "NOT_FOUND", f"no route for {event.http_method} {event.path}")

    @app.exception_handler(ServiceError)
    def _powertools_http(exc: ServiceError) -> Response:
        status = HTTPStatus(exc.status_code)
        return error_response(status.value, status.name, str(exc.msg))

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:
        # Log the cause with its traceback; the client only learns that it was not its fault.
        log.exception("unhandled error")
        return error_response(500, "INTERNAL_ERROR", "internal error")

    return app

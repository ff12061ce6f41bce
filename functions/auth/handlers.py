"""Lambda entry points `functions.auth.handlers.register` and `functions.auth.handlers.token`.

Thin: parse the event, call `logic`, map the result. Each entry point has its own resolver with only its route,
so a function answers nothing but what it is deployed for. Passwords never reach a log line: bodies are not
logged, and the models are only handed to `logic`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.auth import logic
from functions.auth.models import RegisterRequest, TokenRequest
from functions.auth.repository import DynamoUserRepository
from functions.auth.settings import get_env
from functions.auth.signing_key import get_signing_key
from functions.common import aws
from functions.common.http import json_response, make_resolver, parse_body
from functions.common.logging import API_GATEWAY_REST, get_logger

logger = get_logger("auth")
register_app = make_resolver("auth", logger=logger)
token_app = make_resolver("auth", logger=logger)


@cache
def users() -> DynamoUserRepository:
    """The users table adapter, built on first use (never at import)."""
    return DynamoUserRepository(client=aws.client("dynamodb"), table_name=get_env().USERS_TABLE_NAME)


@register_app.post("/auth/register")
def _register() -> Any:
    request = parse_body(register_app, RegisterRequest)
    created = logic.register(request, users=users())
    logger.info("user registered", extra={"username": created.username})
    return json_response(201, created.model_dump())


@token_app.post("/auth/token")
def _token() -> Any:
    request = parse_body(token_app, TokenRequest)
    env = get_env()
    issued = logic.issue(
        request,
        users=users(),
        signing_key=lambda: get_signing_key(env.JWT_SECRET_ARN),
        ttl_seconds=env.TOKEN_TTL_SECONDS,
    )
    # RFC 6749 5.1: token responses must not be cached.
    return json_response(200, issued.model_dump(), {"Cache-Control": "no-store", "Pragma": "no-cache"})


@logger.inject_lambda_context(correlation_id_path=API_GATEWAY_REST, clear_state=True)
def register(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """`POST /auth/register` `{username, password}` -> 201 `{username}`; 409 if taken."""
    return register_app.resolve(event, context)


@logger.inject_lambda_context(correlation_id_path=API_GATEWAY_REST, clear_state=True)
def token(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """`POST /auth/token` `{username, password}` -> 200 `{access_token, token_type, expires_in}`; 401 otherwise."""
    return token_app.resolve(event, context)

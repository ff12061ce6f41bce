"""Lambda entry points `functions.auth.handlers.register`, `.token` and `.authorizer`.

Thin: parse the event, call `logic`, map the result. Each entry point has its own resolver with only its route,
so a function answers nothing but what it is deployed for. Passwords never reach a log line: bodies are not
logged, and the models are only handed to `logic`.

`authorizer` is the API Gateway REQUEST authorizer: `Authorization: Bearer <jwt>` in, an IAM policy out.
Identity source: `method.request.header.Authorization` (API Gateway caches the answer per header value).
Because a cached policy is reused for every route the same token calls, the policy allows the whole API
(`<api>/<stage>/*/*`), not just the method that triggered it. An invalid or absent token raises
`Exception("Unauthorized")`, the documented way to make API Gateway answer 401. Any other failure (e.g. the
secret cannot be read) propagates, and API Gateway answers 500: the authorizer fails closed.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.auth import logic
from functions.auth.adapters import DynamoUserRepository, get_signing_key
from functions.auth.errors import InvalidToken
from functions.auth.models import RegisterRequest, TokenRequest
from functions.auth.settings import get_authorizer_env, get_env
from functions.auth.tokens import Identity, bearer_token, verify_token
from functions.common import aws
from functions.common.http import json_response, make_resolver, parse_body
from functions.common.logging import API_GATEWAY_REST, get_logger
from functions.common.tracing import traced

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


@traced
@logger.inject_lambda_context(correlation_id_path=API_GATEWAY_REST, clear_state=True)
def register(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """`POST /auth/register` `{username, password}` -> 201 `{username}`; 409 if taken."""
    return register_app.resolve(event, context)


@traced
@logger.inject_lambda_context(correlation_id_path=API_GATEWAY_REST, clear_state=True)
def token(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """`POST /auth/token` `{username, password}` -> 200 `{access_token, token_type, expires_in}`; 401 otherwise."""
    return token_app.resolve(event, context)


# ---- the REQUEST authorizer ----

# What protected handlers read from `requestContext.authorizer` (values must be strings for API Gateway).
CONTEXT_USER_ID = "userId"
CONTEXT_USERNAME = "username"


def policy_for(identity: Identity, method_arn: str) -> dict[str, Any]:
    """An Allow policy on every method of the API `method_arn` belongs to, with the user in its context."""
    response = APIGatewayAuthorizerResponse.from_route_arn(
        method_arn,
        principal_id=identity.user_id,
        context={CONTEXT_USER_ID: identity.user_id, CONTEXT_USERNAME: identity.username},
    )
    response.allow_all_routes()
    return response.asdict()


@traced
@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=APIGatewayAuthorizerRequestEvent)
def authorizer(event: APIGatewayAuthorizerRequestEvent, context: LambdaContext) -> dict[str, Any]:
    """Verify the bearer token; Allow with the user id, or raise Unauthorized."""
    try:
        presented = bearer_token(event.headers.get("Authorization"))
        identity = verify_token(presented, key=get_signing_key(get_authorizer_env().JWT_SECRET_ARN))
    except InvalidToken as exc:
        # The reason is safe to log (it never contains the token); the caller only ever sees 401.
        logger.info("token rejected", extra={"reason": str(exc)})
        raise Exception("Unauthorized") from None
    logger.append_keys(user_id=identity.user_id)
    return policy_for(identity, event.method_arn)

"""API Gateway REQUEST authorizer: `Authorization: Bearer <jwt>` in, an IAM policy out.

Identity source: `method.request.header.Authorization` (API Gateway caches the answer per header value).
Because a cached policy is reused for every route the same token calls, the policy allows the whole API
(`<api>/<stage>/*/*`), not just the method that triggered it. An invalid or absent token raises
`Exception("Unauthorized")`, the documented way to make API Gateway answer 401. Any other failure (e.g. the
secret cannot be read) propagates, and API Gateway answers 500: the authorizer fails closed.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.auth.settings import get_authorizer_env
from functions.auth.signing_key import get_signing_key
from functions.auth.tokens import Identity, InvalidToken, bearer_token, verify_token
from functions.common.logging import get_logger

logger = get_logger("auth")

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


@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=APIGatewayAuthorizerRequestEvent)
def handler(event: APIGatewayAuthorizerRequestEvent, context: LambdaContext) -> dict[str, Any]:
    """Verify the bearer token; Allow with the user id, or raise Unauthorized."""
    try:
        token = bearer_token(event.headers.get("Authorization"))
        identity = verify_token(token, key=get_signing_key(get_authorizer_env().JWT_SECRET_ARN))
    except InvalidToken as exc:
        # The reason is safe to log (it never contains the token); the caller only ever sees 401.
        logger.info("token rejected", extra={"reason": str(exc)})
        raise Exception("Unauthorized") from None
    logger.append_keys(user_id=identity.user_id)
    return policy_for(identity, event.method_arn)

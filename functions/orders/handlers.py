"""Lambda entry points `functions.orders.handlers.create_order`, `.get_order` and `.list_orders`.

Thin: read the user from the authorizer's context (never from the body), parse, call `logic`, map the result.
`create_order` runs the order flow under Powertools idempotency keyed on (user, `Idempotency-Key`), so a retried
request replays the stored answer instead of ordering twice.

Powertools' idempotency utility is imported only by the create flow, on its first call: its package imports the
DynamoDB persistence layer and with it boto3 (~100 ms), which `get_order` and `list_orders` would otherwise pay at
every cold start for a feature they never use.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.common import aws
from functions.common.errors import ServiceUnavailable, Unauthorized, ValidationFailed
from functions.common.http import APIGatewayRestResolver, json_response, make_resolver, parse_body
from functions.common.logging import API_GATEWAY_REST, get_logger
from functions.common.tracing import annotate, traced
from functions.orders import logic
from functions.orders.adapters import DynamoOrderRepository, HttpInventory, HttpNotifier, build_session
from functions.orders.errors import IdempotencyKeyReused, MissingIdempotencyKey, RequestInProgress
from functions.orders.models import IDEMPOTENCY_KEY, CreateOrderRequest, PlaceOrder
from functions.orders.service_token import service_auth
from functions.orders.settings import get_env, get_read_env

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

logger = get_logger("orders")
create_app = make_resolver("orders", logger=logger)
get_app = make_resolver("orders", logger=logger)
list_app = make_resolver("orders", logger=logger)

IDEMPOTENCY_HEADER = "Idempotency-Key"
# Keys are remembered a day: long enough for any client's retry policy.
IDEMPOTENCY_TTL_SECONDS = 24 * 3600

# ---- adapters, built on first use per container (never at import) ----


@cache
def orders_repository(table_name: str) -> DynamoOrderRepository:
    return DynamoOrderRepository(client=aws.client("dynamodb"), table_name=table_name)


@cache
def http_session(base_url: str) -> Any:
    session = build_session(base_url)
    env = get_env()
    session.auth = service_auth(env.SERVICE_TOKEN_SECRET_ARN, env.service_claims)  # the ingress wants it
    return session


def inventory() -> HttpInventory:
    env = get_env()
    return HttpInventory(
        session=http_session(env.services_url),
        base_url=env.services_url,
        connect_timeout=env.HTTP_CONNECT_TIMEOUT,
        read_timeout=env.HTTP_READ_TIMEOUT,
    )


def notifier() -> HttpNotifier:
    env = get_env()
    return HttpNotifier(
        session=http_session(env.services_url),
        base_url=env.services_url,
        connect_timeout=env.HTTP_CONNECT_TIMEOUT,
        read_timeout=env.HTTP_READ_TIMEOUT,
    )


def _run_place_order(*, command: dict[str, Any]) -> dict[str, Any]:
    order = logic.place_order(
        PlaceOrder.model_validate(command),
        inventory=inventory(),
        orders=orders_repository(get_env().ORDERS_TABLE_NAME),
        notifier=notifier(),
    )
    return order.model_dump()


@cache
def idempotency_config() -> IdempotencyConfig:
    """The one idempotency configuration of the container (it also holds the current Lambda context)."""
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

    return IdempotencyConfig(
        # The key is the user plus their Idempotency-Key: two users may pick the same key without colliding.
        event_key_jmespath="[userId, idempotencyKey]",
        # The same key with a different body is a client bug, not a retry: refuse it instead of replaying.
        payload_validation_jmespath="[productId, quantity]",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
        hash_function="sha256",
    )


@cache
def idempotent_place_order(table_name: str) -> Callable[..., dict[str, Any]]:
    """`_run_place_order` under Powertools idempotency on `table_name`, built once per container."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, idempotent_function

    store = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=aws.client("dynamodb"))
    wrapped = idempotent_function(
        _run_place_order,
        data_keyword_argument="command",
        persistence_store=store,
        config=idempotency_config(),
        key_prefix="orders.create_order",
    )
    return wrapped  # type: ignore[no-any-return]


# ---- request helpers ----


def current_user(app: APIGatewayRestResolver) -> str:
    """The user id the authorizer put in the request context; absent means the route is not protected: refuse."""
    authorizer = app.current_event.request_context.authorizer
    user_id = authorizer.get("userId") if authorizer else None
    if not isinstance(user_id, str) or not user_id:
        raise Unauthorized("no authenticated user")
    return user_id


def idempotency_key(app: APIGatewayRestResolver) -> str:
    raw = app.current_event.headers.get(IDEMPOTENCY_HEADER)
    if raw is None or raw == "":
        raise MissingIdempotencyKey(f"the {IDEMPOTENCY_HEADER} header is required", field=IDEMPOTENCY_HEADER)
    if not IDEMPOTENCY_KEY.fullmatch(raw):
        raise ValidationFailed(
            f"the {IDEMPOTENCY_HEADER} header must be 1 to 255 visible ASCII characters", field=IDEMPOTENCY_HEADER
        )
    return raw


# ---- routes ----


@create_app.post("/orders")
def _create_order() -> Any:
    # Imported here, not at the top: this package loads boto3 (see the module docstring).
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyPersistenceLayerError,
        IdempotencyValidationError,
    )

    user_id = current_user(create_app)
    key = idempotency_key(create_app)
    request = parse_body(create_app, CreateOrderRequest)
    command = PlaceOrder(
        userId=user_id, idempotencyKey=key, productId=request.productId, quantity=request.quantity
    ).model_dump()
    try:
        order = idempotent_place_order(get_env().IDEMPOTENCY_TABLE_NAME)(command=command)
    except IdempotencyValidationError:
        raise IdempotencyKeyReused(
            f"this {IDEMPOTENCY_HEADER} was already used for a different order", field=IDEMPOTENCY_HEADER
        ) from None
    except IdempotencyAlreadyInProgressError:
        raise RequestInProgress(
            f"a request with this {IDEMPOTENCY_HEADER} is still being processed", field=IDEMPOTENCY_HEADER
        ) from None
    except IdempotencyPersistenceLayerError:
        logger.exception("idempotency store unavailable")
        raise ServiceUnavailable("orders are temporarily unavailable", retry_after=1) from None
    annotate("order.id", order["id"])  # `python -m local trace <order id>` finds the trace by it
    return json_response(201, order, {"Location": f"/orders/{order['id']}"})


@get_app.get("/orders/<order_id>")
def _get_order(order_id: str) -> Any:
    order = logic.get_order(
        order_id, user_id=current_user(get_app), orders=orders_repository(get_read_env().ORDERS_TABLE_NAME)
    )
    return json_response(200, order.model_dump())


@list_app.get("/orders")
def _list_orders() -> Any:
    params = list_app.current_event.query_string_parameters or {}
    page = logic.list_orders(
        user_id=current_user(list_app),
        limit=logic.parse_limit(params.get("limit")),
        next_token=params.get("nextToken"),
        orders=orders_repository(get_read_env().ORDERS_TABLE_NAME),
    )
    return json_response(200, page.model_dump(exclude_none=True))


# ---- entry points ----


@traced
@logger.inject_lambda_context(correlation_id_path=API_GATEWAY_REST, clear_state=True)
def create_order(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """`POST /orders` `{productId, quantity}` + `Idempotency-Key` -> 201 order with `Location`."""
    # Lets Powertools expire an in-progress record when this invocation times out, so a retry is not blocked.
    idempotency_config().register_lambda_context(context)
    return create_app.resolve(event, context)


@traced
@logger.inject_lambda_context(correlation_id_path=API_GATEWAY_REST, clear_state=True)
def get_order(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """`GET /orders/{id}` -> 200 the caller's order, 404 for a missing or someone else's order."""
    return get_app.resolve(event, context)


@traced
@logger.inject_lambda_context(correlation_id_path=API_GATEWAY_REST, clear_state=True)
def list_orders(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """`GET /orders?limit=&nextToken=` -> 200 `{items, nextToken?}`, newest first."""
    return list_app.resolve(event, context)

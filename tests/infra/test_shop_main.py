"""The shop as `__main__.py` wires it (one REST API with the TODO routes, exports), and the shop's operations in
infra/openapi.yaml against the handlers' own models."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel

from functions.auth.models import USERNAME_PATTERN, RegisterRequest, TokenRequest, TokenResponse
from functions.orders.handlers import IDEMPOTENCY_HEADER
from functions.orders.models import IDEMPOTENCY_KEY, MAX_PAGE, CreateOrderRequest, Order, OrderPage
from infra import openapi
from infra.shop_functions import HANDLERS
from sim.capture import Graph

SECURED = {("/orders", "GET"), ("/orders", "POST"), ("/orders/{id}", "GET")}
PUBLIC = {("/auth/register", "POST"), ("/auth/token", "POST")}


def schema(name: str) -> dict[str, Any]:
    return dict(openapi.load_spec()["components"]["schemas"][name])


def operation(path: str, method: str) -> dict[str, Any]:
    return dict(openapi.load_spec()["paths"][path][method.lower()])


def required_fields(model: type[BaseModel]) -> set[str]:
    return {name for name, f in model.model_fields.items() if f.is_required()}


# --- __main__.py ------------------------------------------------------------------------------------------

def test_stack_exports_the_shops_tables_and_ingress_url(dev_graph: Graph) -> None:
    exports = dev_graph.exports
    for key, role in (("usersTableName", "users"), ("ordersTableName", "orders"),
                      ("idempotencyTableName", "idempotency")):
        assert exports[key] == dev_graph.one("aws:dynamodb/table:Table", f"shop-functions-{role}").outputs["name"]
    assert exports["shopIngressUrl"] == f"http://{exports['ingressHostname']}"
    assert exports["shopNamespace"] == "shop"


def test_one_rest_api_serves_the_todo_and_shop_routes_with_the_authorizer(dev_graph: Graph) -> None:
    [api] = dev_graph.of_type("aws:apigateway/restApi:RestApi")
    body = json.loads(api.inputs["body"])
    assert {"/todos", "/auth/register", "/auth/token", "/orders", "/orders/{id}"} <= set(body["paths"])
    authorizer = dev_graph.one("aws:lambda/function:Function", "shop-functions-auth-authorizer-function")
    scheme = body["components"]["securitySchemes"]["jwt"]["x-amazon-apigateway-authorizer"]
    assert scheme["authorizerUri"] == authorizer.outputs["invokeArn"]
    assert not body["paths"]["/todos"]["get"].get("security"), "the TODO API stays public"


def test_shop_functions_use_the_dependency_layer(dev_graph: Graph) -> None:
    layer = dev_graph.one("aws:lambda/layerVersion:LayerVersion", "deps")
    for name in (*HANDLERS, "auth-authorizer"):
        assert dev_graph.one("aws:lambda/function:Function", f"shop-functions-{name}-function").inputs["layers"] == [
            layer.outputs["arn"]], name


# --- the OpenAPI document ---------------------------------------------------------------------------------

def test_order_operations_declare_the_jwt_security_and_auth_operations_none() -> None:
    for path, method, op in openapi.operations():
        if (path, method) in SECURED:
            assert op["security"] == [{"jwt": []}], f"{method} {path}"
            assert "401" in op["responses"] and "403" in op["responses"], f"{method} {path}"
        elif (path, method) in PUBLIC:
            assert "security" not in op, f"{method} {path}"


def test_shop_operations_name_the_shops_functions() -> None:
    found = {(path, method): op["x-function"] for path, method, op in openapi.operations()
             if op["x-function"] in HANDLERS}
    assert found == {("/auth/register", "POST"): "auth-register", ("/auth/token", "POST"): "auth-token",
                     ("/orders", "GET"): "orders-list", ("/orders", "POST"): "orders-create",
                     ("/orders/{id}", "GET"): "orders-get"}


def test_create_order_requires_the_idempotency_key_header() -> None:
    [param] = [p for p in operation("/orders", "POST")["parameters"] if p["in"] == "header"]
    assert param["name"] == IDEMPOTENCY_HEADER and param["required"] is True
    pattern = re.compile(param["schema"]["pattern"])
    for key in ("3f1c2a9e-uuid", "a", "~" * 255):
        assert pattern.fullmatch(key) and IDEMPOTENCY_KEY.fullmatch(key), key
    for key in ("has space", "tab\t", "é"):
        assert not pattern.fullmatch(key) and not IDEMPOTENCY_KEY.fullmatch(key), key
    assert param["schema"]["maxLength"] == 255


def test_create_order_answers_every_status_the_function_can_return_with_the_error_envelope() -> None:
    responses = operation("/orders", "POST")["responses"]
    assert set(responses) == {"201", "400", "401", "403", "404", "409", "422", "503"}
    refs = openapi.load_spec()["components"]["responses"]
    for status in ("400", "401", "403", "404", "409", "422", "503"):
        target = refs[responses[status]["$ref"].rsplit("/", 1)[1]]
        assert target["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}, status
    assert "Retry-After" in refs["Unavailable"]["headers"]


def test_request_schemas_accept_exactly_the_handlers_model_fields() -> None:
    for name, model in (("RegisterRequest", RegisterRequest), ("TokenRequest", TokenRequest),
                        ("CreateOrderRequest", CreateOrderRequest)):
        doc = schema(name)
        assert doc["additionalProperties"] is False, name
        assert set(doc["properties"]) == set(model.model_fields), name
        assert set(doc["required"]) == required_fields(model), name
    assert schema("RegisterRequest")["properties"]["username"]["pattern"] == USERNAME_PATTERN
    assert "userId" not in schema("CreateOrderRequest")["properties"], "the user comes from the authorizer"


def test_quantity_bounds_are_left_to_the_function_so_bad_quantities_answer_422() -> None:
    quantity = schema("CreateOrderRequest")["properties"]["quantity"]
    assert quantity == {"type": "integer"}


def test_response_schemas_list_the_handlers_model_fields() -> None:
    for name, model in (("Order", Order), ("OrderPage", OrderPage), ("TokenResponse", TokenResponse)):
        doc = schema(name)
        assert set(doc["properties"]) == set(model.model_fields), name
        assert set(doc["required"]) == required_fields(model) | ({"token_type"} if name == "TokenResponse" else set())


def test_list_orders_limit_matches_the_functions_page_cap() -> None:
    [limit] = [p for p in operation("/orders", "GET")["parameters"] if p["name"] == "limit"]
    assert limit["schema"]["maximum"] == MAX_PAGE and limit["schema"]["minimum"] == 1

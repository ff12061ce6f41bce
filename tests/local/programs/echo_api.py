"""A small Pulumi program for the gateway's tests: the project's own components with test handlers."""

import pulumi
from pydantic import BaseModel

from infra.api import HttpApi, HttpApiArgs
from infra.lambdas import LambdaFunction, LambdaFunctionArgs
from tests.local.testfns.settings import AuthorizerEnv, Env

SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "echo", "version": "1"},
    "paths": {
        "/echo/{id}": {
            "parameters": [{"name": "id", "in": "path", "required": True,
                            "schema": {"type": "string", "maxLength": 8}}],
            "get": {"operationId": "getEcho", "x-function": "echo",
                    "parameters": [{"name": "n", "in": "query", "required": False,
                                    "schema": {"type": "integer", "minimum": 1, "maximum": 5}}],
                    "responses": {"200": {"description": "ok"}}},
            "post": {"operationId": "postEcho", "x-function": "echo",
                     "requestBody": {"required": True, "content": {"application/json": {
                         "schema": {"$ref": "#/components/schemas/Thing"}}}},
                     "responses": {"200": {"description": "ok"}}},
        },
        "/needs-query": {"get": {"operationId": "needsQuery", "x-function": "echo",
                                 "parameters": [{"name": "q", "in": "query", "required": True,
                                                 "schema": {"type": "string"}}],
                                 "responses": {"200": {"description": "ok"}}}},
        "/raw": {"post": {"operationId": "raw", "x-function": "echo", "responses": {"200": {"description": "ok"}}}},
        "/fail": {"get": {"operationId": "fail", "x-function": "fail", "responses": {"200": {"description": "ok"}}}},
        "/slow": {"get": {"operationId": "slow", "x-function": "slow", "responses": {"200": {"description": "ok"}}}},
        "/binary": {"get": {"operationId": "binary", "x-function": "binary",
                            "responses": {"200": {"description": "ok"}}}},
        "/malformed": {"get": {"operationId": "malformed", "x-function": "malformed",
                               "responses": {"200": {"description": "ok"}}}},
        "/private": {"get": {"operationId": "private", "x-function": "echo", "security": [{"jwt": []}],
                             "responses": {"200": {"description": "ok"}}}},
    },
    "components": {"schemas": {"Thing": {
        "type": "object", "additionalProperties": False, "required": ["name"],
        "properties": {"name": {"type": "string", "minLength": 1, "pattern": "\\S"}, "count": {"type": "integer"}},
    }}},
}


def function(name: str, entry: str, *, timeout: int = 3, contract: type[BaseModel] = Env,
             environment: dict[str, str] | None = None) -> LambdaFunction:
    return LambdaFunction(name, LambdaFunctionArgs(
        handler=f"tests.local.testfns.handlers.{entry}", code=pulumi.AssetArchive({}),
        env_contract=contract.model_fields.keys(),
        environment={"GREETING": "hello"} if environment is None else environment,
        memory_mb=128, timeout_seconds=timeout))


functions = {"echo": function("echo", "echo"), "fail": function("fail", "fail"),
             "slow": function("slow", "slow", timeout=1), "binary": function("binary", "binary"),
             "malformed": function("malformed", "malformed")}
auth = function("auth", "authorizer", contract=AuthorizerEnv, environment={})
api = HttpApi("api", HttpApiArgs(spec=SPEC, functions=functions, throttle_rate_limit=10, throttle_burst_limit=20,
                                 authorizer=auth, authorizer_cache_seconds=300))
pulumi.export("apiUrl", api.url)

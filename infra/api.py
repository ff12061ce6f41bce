"""`HttpApi`: the one REST API, its body rendered from infra/openapi.yaml.

The body carries every route, validator, CORS preflight and integration, so the API's shape is the document's
shape; a deployment is re-made whenever the body changes, the stage throttles from config, and each function
gets a permission scoped to exactly its own method and path.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import openapi
from infra.lambdas import LambdaFunction


def source_arn_path(method: str, path: str) -> str:
    """`GET/todos/*` for `GET /todos/{id}`: the part of an execute-api ARN that names one route."""
    return f"{method}{re.sub(r'{[^}]+}', '*', path)}"


@dataclass(frozen=True, kw_only=True)
class HttpApiArgs:
    spec: dict[str, Any]
    functions: Mapping[str, LambdaFunction]
    """Function name used in the document's `x-function` -> the function serving it."""
    throttle_rate_limit: int
    throttle_burst_limit: int
    authorizer: LambdaFunction | None = None
    authorizer_cache_seconds: int = 300
    stage_name: str = "api"


class HttpApi(pulumi.ComponentResource):
    url: pulumi.Output[str]
    rest_api_id: pulumi.Output[str]

    def __init__(self, name: str, args: HttpApiArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-mesh:api:HttpApi", name, None, opts)
        self.rest_api = self._create_rest_api(name, args)
        self.stage = self._create_stage(name, args)
        self._create_permissions(name, args)
        self.url = self.stage.invoke_url
        self.rest_api_id = self.rest_api.id
        self.register_outputs({"url": self.url, "rest_api_id": self.rest_api_id})

    def _create_rest_api(self, name: str, args: HttpApiArgs) -> aws.apigateway.RestApi:
        names = openapi.function_names(args.spec)
        invoke_arns = pulumi.Output.all(*[args.functions[n].invoke_arn for n in names])
        authorizer_uri = args.authorizer.invoke_arn if args.authorizer else pulumi.Output.from_input(None)
        title = f"{pulumi.get_project()}-{pulumi.get_stack()}"

        def body(values: list[Any]) -> str:
            arns, auth_uri = values
            return json.dumps(openapi.render(args.spec, dict(zip(names, arns, strict=True)), title=title,
                                             authorizer_uri=auth_uri,
                                             authorizer_cache_seconds=args.authorizer_cache_seconds),
                              sort_keys=True)

        self.body = pulumi.Output.all(invoke_arns, authorizer_uri).apply(body)
        return aws.apigateway.RestApi(
            f"{name}-rest-api",
            name=title,
            body=self.body,
            # Replace the API's routes with the body's on every update (not merge), so removed routes go away.
            put_rest_api_mode="overwrite",
            fail_on_warnings=True,
            endpoint_configuration=aws.apigateway.RestApiEndpointConfigurationArgs(types="REGIONAL"),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_stage(self, name: str, args: HttpApiArgs) -> aws.apigateway.Stage:
        deployment = aws.apigateway.Deployment(
            f"{name}-deployment",
            rest_api=self.rest_api.id,
            # A new deployment whenever the body changes; the stage moves to it, then the old one is deleted.
            triggers={"body": self.body.apply(lambda b: hashlib.sha256(b.encode()).hexdigest())},
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=False),
        )
        stage = aws.apigateway.Stage(
            f"{name}-stage",
            rest_api=self.rest_api.id,
            deployment=deployment.id,
            stage_name=args.stage_name,
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.apigateway.MethodSettings(
            f"{name}-throttling",
            rest_api=self.rest_api.id,
            stage_name=stage.stage_name,
            method_path="*/*",
            settings=aws.apigateway.MethodSettingsSettingsArgs(
                throttling_rate_limit=args.throttle_rate_limit,
                throttling_burst_limit=args.throttle_burst_limit,
                metrics_enabled=True,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return stage

    def _create_permissions(self, name: str, args: HttpApiArgs) -> None:
        routes: dict[str, list[str]] = {}
        for path, method, op in openapi.operations(args.spec):
            routes.setdefault(op["x-function"], []).append(source_arn_path(method, path))
        for fn_name, paths in routes.items():
            for index, route in enumerate(paths):
                aws.lambda_.Permission(
                    f"{name}-invoke-{fn_name}" + (f"-{index}" if index else ""),
                    action="lambda:InvokeFunction",
                    function=args.functions[fn_name].function_name,
                    principal="apigateway.amazonaws.com",
                    source_arn=pulumi.Output.concat(self.rest_api.execution_arn, "/*/", route),
                    opts=pulumi.ResourceOptions(parent=self),
                )
        if args.authorizer is not None:
            aws.lambda_.Permission(
                f"{name}-invoke-authorizer",
                action="lambda:InvokeFunction",
                function=args.authorizer.function_name,
                principal="apigateway.amazonaws.com",
                source_arn=pulumi.Output.concat(self.rest_api.execution_arn, "/authorizers/*"),
                opts=pulumi.ResourceOptions(parent=self),
            )

"""`ShopFunctions`: the shop's AWS side. The users, orders and idempotency tables, the JWT signing key in Secrets
Manager, one least-privilege function per route plus the REQUEST authorizer, and (for the order functions) a place
in the VPC's private subnets whose security group lets them reach only the internal ingress and DynamoDB.

Which function may call what (its IAM statements), which variables it reads and where it runs are module-level
tables and pure functions, testable without the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
from pydantic import BaseModel

from functions.auth.settings import ENV_BY_HANDLER as AUTH_ENV
from functions.orders.settings import ENV_BY_HANDLER as ORDERS_ENV
from functions.orders.settings import Env as OrdersEnv
from infra import tables
from infra.dynamo import create_table
from infra.facts import PrivateNetwork
from infra.iam import statement
from infra.lambdas import LambdaFunction, LambdaFunctionArgs
from infra.packaging import code_archive
from infra.secrets import secret_holding
from infra.service_auth import ServiceTokenAccess, token_egress, token_environment, token_statements

# x-function name in infra/openapi.yaml -> entry point. The authorizer is not a route; HttpApi wires it.
HANDLERS: dict[str, str] = {
    "auth-register": "functions.auth.handlers.register",
    "auth-token": "functions.auth.handlers.token",
    "orders-create": "functions.orders.handlers.create_order",
    "orders-get": "functions.orders.handlers.get_order",
    "orders-list": "functions.orders.handlers.list_orders",
}
AUTHORIZER = "auth-authorizer"
AUTHORIZER_HANDLER = "functions.auth.handlers.authorizer"
#: Functions that call the mesh or only DynamoDB and run in the VPC (the auth functions need neither).
VPC_FUNCTIONS = ("orders-create", "orders-get", "orders-list")
ENV_MODELS: dict[str, type[BaseModel]] = {**AUTH_ENV, **ORDERS_ENV}

#: The ENI actions Lambda performs with the execution role of a function in a VPC (AWSLambdaVPCAccessExecutionRole
#: minus logs:CreateLogGroup, which our log groups make unnecessary).
ENI_DESCRIBE_ACTIONS = ("ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets")
ENI_MANAGE_ACTIONS = ("ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses",
                      "ec2:UnassignPrivateIpAddresses")
#: What Powertools' DynamoDB idempotency layer calls: conditional put (claim), get (inspect a conflicting record),
#: update (store the result), delete (release the key when the function fails).
IDEMPOTENCY_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
INGRESS_PORT = 80
HTTPS_PORT = 443


# --- Pure helpers -------------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class ShopArns:
    """What the functions' policies are scoped to."""

    users_table: pulumi.Input[str]
    orders_table: pulumi.Input[str]
    idempotency_table: pulumi.Input[str]
    jwt_secret: pulumi.Input[str]


def index_arn(table_arn: pulumi.Input[str], index: str) -> pulumi.Output[str]:
    return pulumi.Output.concat(table_arn, "/index/", index)


def function_statements(fn: str, arns: ShopArns) -> list[dict[str, Any]]:
    """Exactly what each function's code calls, on exactly the resources it calls it on."""
    by_user = tables.ORDERS.indexes[0].name
    read_key = statement(["secretsmanager:GetSecretValue"], [arns.jwt_secret], sid="ReadJwtKey")
    return {
        "auth-register": [statement(["dynamodb:PutItem"], [arns.users_table], sid="UsersTable")],
        "auth-token": [statement(["dynamodb:GetItem"], [arns.users_table], sid="UsersTable"), read_key],
        AUTHORIZER: [read_key],
        # GetItem too: when the conditional put finds the order already stored (a retried request), `add` reads
        # it back to answer the stored order (functions/orders/adapters.py).
        "orders-create": [statement(["dynamodb:PutItem", "dynamodb:GetItem"], [arns.orders_table], sid="OrdersTable"),
                          statement(IDEMPOTENCY_ACTIONS, [arns.idempotency_table], sid="IdempotencyTable")],
        "orders-get": [statement(["dynamodb:GetItem"], [arns.orders_table], sid="OrdersTable")],
        "orders-list": [statement(["dynamodb:Query"], [index_arn(arns.orders_table, by_user)], sid="OrdersByUser")],
    }[fn]


def vpc_access_statements(vpc_id: pulumi.Input[str]) -> list[dict[str, Any]]:
    """Lambda's ENI management for a function in a VPC, as tight as EC2 allows.

    `Resource: "*"` is unavoidable here: the ENIs do not exist before Lambda creates them, the Lambda developer
    guide states that DescribeNetworkInterfaces only works on all resources (EC2 Describe* calls support no
    resource-level permissions), and that DeleteNetworkInterface must cover every ENI id or the function can lose
    its VPC access. So the statements are narrowed by conditions instead: describes to this region, and every call
    that changes an ENI to ENIs, subnets and security groups of the platform's VPC (`ec2:Vpc`).
    """
    caller = aws.get_caller_identity_output()
    region = aws.get_region_output().region
    vpc_arn = pulumi.Output.concat("arn:aws:ec2:", region, ":", caller.account_id, ":vpc/", vpc_id)
    describe = statement(ENI_DESCRIBE_ACTIONS, ["*"], sid="LambdaEniDescribe")
    describe["Condition"] = {"StringEquals": {"aws:RequestedRegion": region}}
    manage = statement(ENI_MANAGE_ACTIONS, ["*"], sid="LambdaEniManage")
    manage["Condition"] = {"StringEquals": {"ec2:Vpc": vpc_arn}}
    return [describe, manage]


def function_environment(fn: str, values: Mapping[str, pulumi.Input[str]]) -> dict[str, pulumi.Input[str]]:
    """The subset of `values` the function's `Env` model reads (so each function gets exactly its names)."""
    model = ENV_MODELS[HANDLERS.get(fn, AUTHORIZER_HANDLER)]
    missing = sorted(set(model.model_fields) - set(values))
    if missing:
        raise ValueError(f"{fn}: no value for {missing}")
    return {name: values[name] for name in model.model_fields}


def services_url(ingress_hostname: pulumi.Input[str]) -> pulumi.Output[str]:
    """`K8S_API_URL`: the internal ingress (plain HTTP inside the VPC; the NLB's listener is port 80)."""
    return pulumi.Output.concat("http://", ingress_hostname)


# --- Args ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class LambdaSettings:
    memory_mb: int
    timeout_seconds: int
    log_retention_days: int
    layers: tuple[pulumi.Input[str], ...] = ()
    log_level: str = "INFO"
    otlp_endpoint: str = ""
    """`OTEL_EXPORTER_OTLP_ENDPOINT` of the traced functions (the stack's `otlpEndpoint`; empty: tracing off)."""


@dataclass(frozen=True, kw_only=True)
class ShopFunctionsArgs:
    lambdas: LambdaSettings
    token_ttl_seconds: int
    jwt_signing_key: pulumi.Input[str]
    """The `jwtSigningKey` secret; stored only in the Secrets Manager secret's version."""
    ingress_hostname: pulumi.Input[str]
    """The ingress gateway Service's load-balancer hostname (`K8S_API_URL` is derived from it)."""
    network: PrivateNetwork | None = None
    """The VPC the order functions run in; None runs them outside any VPC (an existing, public ingress)."""
    protect_data: bool = False
    function_prefix: str = ""
    """Prefix of the functions' physical names (`<project>-<stack>-<prefix><function>`). Empty keeps the names the
    stack's one shop has always deployed; a second Shop in the same stack sets its own."""
    service_token: ServiceTokenAccess | None = None
    """The mesh credential's key (set by `Shop` from its `ServiceAuth`)."""
    orders_reserved_concurrency: int = -1
    """`ordersReservedConcurrency`: reserved concurrent executions of orders-create (-1: none)."""



# --- Component ----------------------------------------------------------------------------------------------

class ShopFunctions(pulumi.ComponentResource):
    """Tables, the JWT key, the auth and order functions and the authorizer."""

    users_table_name: pulumi.Output[str]
    orders_table_name: pulumi.Output[str]
    idempotency_table_name: pulumi.Output[str]
    jwt_secret_arn: pulumi.Output[str]
    services_url: pulumi.Output[str]

    def __init__(self, name: str, args: ShopFunctionsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-mesh:shop:ShopFunctions", name, None, opts)
        self.args = args
        self.tables = {
            role: create_table(f"{name}-{role}", spec, protect=args.protect_data, parent=self)
            for role, spec in (("users", tables.USERS), ("orders", tables.ORDERS),
                               ("idempotency", tables.IDEMPOTENCY))
        }
        self.jwt_secret = self._create_jwt_secret(name)
        self.security_group = self._create_network_access(name) if args.network else None
        self.services_url = services_url(args.ingress_hostname)
        self.functions = self._create_functions(name)
        self.authorizer = self._create_function(name, AUTHORIZER, AUTHORIZER_HANDLER,
                                                "verifies bearer tokens (authorizer)")
        self.users_table_name = self.tables["users"].name
        self.orders_table_name = self.tables["orders"].name
        self.idempotency_table_name = self.tables["idempotency"].name
        self.jwt_secret_arn = self.jwt_secret.arn
        self.register_outputs({"users_table_name": self.users_table_name, "orders_table_name": self.orders_table_name,
                               "idempotency_table_name": self.idempotency_table_name,
                               "jwt_secret_arn": self.jwt_secret_arn, "services_url": self.services_url})

    def _create_jwt_secret(self, name: str) -> aws.secretsmanager.Secret:
        return secret_holding(f"{name}-jwt-key", f"{name}-jwt-key-version",
                              description="HS256 key that signs the shop's access tokens",
                              value=self.args.jwt_signing_key, protect_data=self.args.protect_data, parent=self)

    def _create_network_access(self, name: str) -> aws.ec2.SecurityGroup:
        """A gateway endpoint for DynamoDB and a security group reaching only the ingress and DynamoDB.

        The order functions talk to two things: the internal ingress (port 80 on an NLB inside the VPC) and
        DynamoDB. The gateway endpoint keeps DynamoDB traffic inside AWS's network (no NAT processing charge, no
        dependency on the single NAT's zone) and gives DynamoDB's prefix list, so HTTPS egress is to DynamoDB's
        addresses only rather than to 0.0.0.0/0. Nothing else (Secrets Manager, the internet) is reachable.
        """
        network = self.args.network
        assert network is not None
        region = aws.get_region_output().region
        endpoint = aws.ec2.VpcEndpoint(
            f"{name}-dynamodb-endpoint",
            vpc_id=network.vpc_id,
            service_name=pulumi.Output.concat("com.amazonaws.", region, ".dynamodb"),
            vpc_endpoint_type="Gateway",
            route_table_ids=list(network.private_route_table_ids),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return aws.ec2.SecurityGroup(
            f"{name}-orders-sg",
            vpc_id=network.vpc_id,
            description="Order functions: egress to the internal ingress and DynamoDB only",
            ingress=[],  # nothing connects to a Lambda ENI
            egress=[
                aws.ec2.SecurityGroupEgressArgs(protocol="tcp", from_port=INGRESS_PORT, to_port=INGRESS_PORT,
                                                cidr_blocks=[network.cidr],
                                                description="The mesh internal ingress (NLB in the VPC)"),
                aws.ec2.SecurityGroupEgressArgs(protocol="tcp", from_port=HTTPS_PORT, to_port=HTTPS_PORT,
                                                prefix_list_ids=[endpoint.prefix_list_id],
                                                description="DynamoDB through the gateway endpoint"),
                *token_egress(self.args.service_token),
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _environment_values(self) -> dict[str, pulumi.Input[str]]:
        lam = self.args.lambdas
        defaults = OrdersEnv.model_fields
        return {
            "LOG_LEVEL": lam.log_level,
            "OTEL_EXPORTER_OTLP_ENDPOINT": lam.otlp_endpoint,
            "JWT_SECRET_ARN": self.jwt_secret.arn,
            "USERS_TABLE_NAME": self.tables["users"].name,
            "TOKEN_TTL_SECONDS": str(self.args.token_ttl_seconds),
            "ORDERS_TABLE_NAME": self.tables["orders"].name,
            "IDEMPOTENCY_TABLE_NAME": self.tables["idempotency"].name,
            "K8S_API_URL": self.services_url,
            # The models' own defaults: the code owns its timeouts, the environment just states them.
            "HTTP_CONNECT_TIMEOUT": str(defaults["HTTP_CONNECT_TIMEOUT"].default),
            "HTTP_READ_TIMEOUT": str(defaults["HTTP_READ_TIMEOUT"].default),
            **(token_environment(self.args.service_token) if self.args.service_token else {}),
        }

    def _previous_names(self, fn: str) -> list[pulumi.Alias] | None:
        """Until the functions were named after this component they were named `<fn>` alone (a second Shop would
        have collided): the alias moves the stack's existing shop functions, and with them their children
        (`LambdaFunction` aliases its children after its own aliases), instead of replacing them. Only the shop
        with the unprefixed physical names can be that existing one."""
        return [pulumi.Alias(name=fn)] if not self.args.function_prefix else None

    def _create_functions(self, name: str) -> dict[str, LambdaFunction]:
        return {fn: self._create_function(name, fn, handler, f"{fn.replace('-', ' ')} (shop)")
                for fn, handler in HANDLERS.items()}

    def _create_function(self, name: str, fn: str, handler: str, description: str) -> LambdaFunction:
        args, lam = self.args, self.args.lambdas
        arns = ShopArns(users_table=self.tables["users"].arn, orders_table=self.tables["orders"].arn,
                        idempotency_table=self.tables["idempotency"].arn, jwt_secret=self.jwt_secret.arn)
        group = handler.split(".")[1]
        values = {**self._environment_values(), "POWERTOOLS_SERVICE_NAME": group}
        statements = [*function_statements(fn, arns), *token_statements(fn, args.service_token)]
        vpc_config = None
        replacement_groups: tuple[pulumi.Input[str], ...] = ()
        if fn in VPC_FUNCTIONS and args.network is not None and self.security_group is not None:
            statements = [*statements, *vpc_access_statements(args.network.vpc_id)]
            vpc_config = aws.lambda_.FunctionVpcConfigArgs(subnet_ids=list(args.network.private_subnet_ids),
                                                           security_group_ids=[self.security_group.id])
            if args.network.default_security_group_id is not None:
                replacement_groups = (args.network.default_security_group_id,)
        return LambdaFunction(
            f"{name}-{fn}",
            LambdaFunctionArgs(
                handler=handler,
                code=code_archive([group]),
                env_contract=ENV_MODELS[handler].model_fields.keys(),
                environment=function_environment(fn, values),
                statements=statements,
                memory_mb=lam.memory_mb,
                timeout_seconds=lam.timeout_seconds,
                log_retention_days=lam.log_retention_days,
                layers=lam.layers,
                vpc_config=vpc_config,
                replacement_security_group_ids=replacement_groups,
                description=description,
                function_name=f"{args.function_prefix}{fn}",
                reserved_concurrency=args.orders_reserved_concurrency if fn == "orders-create" else -1,
            ),
            opts=pulumi.ResourceOptions(parent=self, aliases=self._previous_names(fn)),
        )

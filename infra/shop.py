"""`Shop`: the hybrid shop. Auth and order Lambdas on AWS, inventory/product/notification in the mesh.

`ShopFunctions` holds the AWS side: the users, orders and idempotency tables, the JWT signing key in Secrets Manager,
one least-privilege function per route plus the REQUEST authorizer, and (for the order functions) a place in the
VPC's private subnets whose security group lets them reach only the internal ingress and DynamoDB.
`ShopServices` holds the Kubernetes side: the `shop` namespace, the database (`infra.database`), the services'
Deployments and Services, and the Istio resources `mesh.shop` builds (routes, retries, the inventory circuit
breaker, who may call whom). Policy documents, names and env maps are module-level pure functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
from pydantic import BaseModel

from functions.auth.settings import ENV_BY_HANDLER as AUTH_ENV
from functions.orders.settings import ENV_BY_HANDLER as ORDERS_ENV
from functions.orders.settings import Env as OrdersEnv
from infra import tables
from infra.canary import canary_settings
from infra.config import PROJECT, ConfigError, Secrets, StackConfig
from infra.containers import ContainerImage
from infra.database import (
    DB_USER,
    SECRET_PASSWORD_KEY,
    SECRET_USER_KEY,
    Database,
    DatabaseArgs,
    InCluster,
    PrivateNetwork,
    secret_env,
)
from infra.dynamo import create_table
from infra.kube import ISTIO_INJECTION, deployment_spec, k8s_opts, service_container
from infra.lambdas import LambdaFunction, LambdaFunctionArgs, statement
from infra.packaging import code_archive
from infra.service_auth import (
    EdgeAuth,
    ServiceAuth,
    ServiceAuthArgs,
    ServiceTokenAccess,
    edge_resources,
    token_egress,
    token_environment,
    token_statements,
)
from mesh.common import Manifest, deployment_name
from mesh.gateway import IngressSettings
from mesh.service_auth import ServiceIdentity
from mesh.shop import SHOP_VERSION, CircuitBreakerSettings, ShopService, ShopSettings, shop_manifests

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
SERVICE_REPLICAS = 2
SERVICE_IMAGES = ("inventory", "product", "notification")


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


def service_environment(service: ShopService, db: Database, *, log_level: str) -> dict[str, pulumi.Input[str]]:
    """The plain (non-secret) variables of `services/<name>/settings.py`; credentials come from the Secret."""
    return {
        "HOST": "0.0.0.0",  # inside the pod: the sidecar is the only way in
        "PORT": str(service.target_port),
        "DATABASE_HOST": db.host,
        "DATABASE_PORT": str(db.port),
        "DATABASE_NAME": db.name,
        "LOG_LEVEL": log_level,
    }


def shop_settings(cfg: StackConfig, ingress: IngressSettings) -> ShopSettings:
    """The stack config as the mesh builders' settings (the only place the circuit-breaker values enter the mesh)."""
    breaker = CircuitBreakerSettings(
        max_connections=cfg.inventory_max_connections,
        http1_max_pending_requests=cfg.inventory_max_pending_requests,
        max_requests_per_connection=cfg.inventory_max_requests_per_connection,
        consecutive_5xx_errors=cfg.inventory_consecutive_5xx_errors,
        interval=cfg.inventory_ejection_interval,
        base_ejection_time=cfg.inventory_base_ejection_time,
        max_ejection_percent=cfg.inventory_max_ejection_percent,
    )
    defaults = ShopSettings()
    services = tuple(replace(s, circuit_breaker=breaker if s.circuit_breaker is not None else None)
                     for s in defaults.services)
    return ShopSettings(namespace=defaults.namespace, ingress=ingress, services=services)


def canary_hosts(cfg: StackConfig, ingress: IngressSettings) -> tuple[str, ...]:
    """The canary app's hosts on the shared gateway (its VirtualService owns them, so allowing them by name at the
    gateway opens nothing of the shop's)."""
    canary = canary_settings(cfg, ingress)
    return (canary.host, *canary.extra_hosts)


def check_shop_config(cfg: StackConfig) -> None:
    """What the shop needs from the platform: a VPC of our own for RDS and for reaching an internal ingress."""
    if cfg.kubeconfig and cfg.database_mode == "rds":
        raise ConfigError(f"{PROJECT}:databaseMode rds needs the VPC this stack creates, but {PROJECT}:kubeconfig "
                          "names an existing cluster; set databaseMode to incluster")
    if cfg.kubeconfig and cfg.ingress_internal:
        raise ConfigError(f"{PROJECT}:ingressInternal true needs the order functions inside the cluster's VPC, but "
                          f"{PROJECT}:kubeconfig names an existing cluster whose VPC this stack does not know; "
                          "set ingressInternal to false")


# --- Args ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class LambdaSettings:
    memory_mb: int
    timeout_seconds: int
    log_retention_days: int
    layers: tuple[pulumi.Input[str], ...] = ()
    log_level: str = "INFO"


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
    service_token: ServiceTokenAccess | None = None
    """The mesh credential's key (set by `Shop` from its `ServiceAuth`)."""


@dataclass(frozen=True, kw_only=True)
class ClusterAccess:
    provider: pulumi.ProviderResource
    mesh_ready: tuple[pulumi.Resource, ...] = ()
    """Istio's releases: custom resources need their CRDs, meshed pods the sidecar injector."""
    gateway: pulumi.Resource | None = None
    """The shared ingress Gateway the VirtualService binds to (created by the platform)."""
    storage_class: str | None = None
    """The StorageClass an in-cluster database's volume claim names (None: the cluster's default)."""
    storage_ready: tuple[pulumi.Resource, ...] = ()
    """The CSI driver and StorageClass the in-cluster database's volume needs (a cluster this stack creates)."""


@dataclass(frozen=True, kw_only=True)
class DatabaseSettings:
    mode: Literal["rds", "incluster"]
    password: pulumi.Input[str]
    instance_class: str = "db.t4g.micro"


@dataclass(frozen=True, kw_only=True)
class ShopServicesArgs:
    settings: ShopSettings
    cluster: ClusterAccess
    images: Mapping[str, ContainerImage]
    """Service name -> what its Deployment runs (the pushed image by digest, or a prebuilt one)."""
    database: DatabaseSettings
    network: PrivateNetwork | None = None
    protect_data: bool = False
    log_level: str = "INFO"
    edge: EdgeAuth | None = None
    """The gateway's service-token checks (set by `Shop` from its `ServiceAuth`)."""


@dataclass(frozen=True, kw_only=True)
class ShopArgs:
    functions: ShopFunctionsArgs
    services: ShopServicesArgs
    service_auth: ServiceAuthArgs | None = None
    other_hosts: tuple[str, ...] = ()
    """Hosts other apps serve through the same gateway (the canary): its ALLOW policy names them."""


def private_network(platform: Any) -> PrivateNetwork | None:
    """The platform's VPC as the shop needs it (None when the cluster is an existing one from `kubeconfig`)."""
    if platform.network is None or platform.cluster is None:
        return None
    return PrivateNetwork(
        vpc_id=platform.network.vpc_id,
        cidr=platform.network.vpc_cidr,
        private_subnet_ids=tuple(platform.network.private_subnet_ids),
        private_route_table_ids=tuple(platform.network.private_route_table_ids),
        node_security_group_id=platform.cluster.cluster_security_group_id,
        default_security_group_id=platform.network.default_security_group_id,
    )


def shop_args(cfg: StackConfig, secrets: Secrets, platform: Any, images: Mapping[str, ContainerImage], *,
              layers: Sequence[pulumi.Input[str]] = ()) -> ShopArgs:
    """The stack config and the platform's outputs as the shop's arguments."""
    check_shop_config(cfg)
    network = private_network(platform)
    return ShopArgs(
        functions=ShopFunctionsArgs(
            lambdas=LambdaSettings(memory_mb=cfg.lambda_memory_mb, timeout_seconds=cfg.lambda_timeout_seconds,
                                   log_retention_days=cfg.log_retention_days, layers=tuple(layers)),
            token_ttl_seconds=cfg.token_ttl_seconds,
            jwt_signing_key=secrets.jwt_signing_key,
            ingress_hostname=platform.ingress_hostname,
            network=network,
            protect_data=cfg.protect_data,
        ),
        services=ShopServicesArgs(
            settings=shop_settings(cfg, platform.args.ingress),
            cluster=ClusterAccess(provider=platform.provider, mesh_ready=tuple(platform.mesh_ready),
                                  gateway=platform.istio.gateway, storage_class=platform.storage_class_name,
                                  storage_ready=tuple(platform.storage_ready)),
            images={svc: images[svc] for svc in SERVICE_IMAGES},
            database=DatabaseSettings(mode=cfg.database_mode, password=secrets.db_password,
                                      instance_class=cfg.database_instance_class),
            network=network,
            protect_data=cfg.protect_data,
        ),
        service_auth=ServiceAuthArgs(identity=ServiceIdentity(), ttl_seconds=cfg.service_token_ttl_seconds,
                                     network=network, protect_data=cfg.protect_data),
        other_hosts=canary_hosts(cfg, platform.args.ingress),
    )


# --- Components ---------------------------------------------------------------------------------------------

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
        self.functions = self._create_functions()
        self.authorizer = self._create_function(AUTHORIZER, AUTHORIZER_HANDLER, "verifies bearer tokens (authorizer)")
        self.users_table_name = self.tables["users"].name
        self.orders_table_name = self.tables["orders"].name
        self.idempotency_table_name = self.tables["idempotency"].name
        self.jwt_secret_arn = self.jwt_secret.arn
        self.register_outputs({"users_table_name": self.users_table_name, "orders_table_name": self.orders_table_name,
                               "idempotency_table_name": self.idempotency_table_name,
                               "jwt_secret_arn": self.jwt_secret_arn, "services_url": self.services_url})

    def _create_jwt_secret(self, name: str) -> aws.secretsmanager.Secret:
        secret = aws.secretsmanager.Secret(
            f"{name}-jwt-key",
            description="HS256 key that signs the shop's access tokens",
            # Dev deletes at once (a re-created stack can reuse the name); protected stacks keep a recovery window.
            recovery_window_in_days=30 if self.args.protect_data else 0,
            opts=pulumi.ResourceOptions(parent=self, protect=self.args.protect_data),
        )
        # The only resource whose inputs hold the key: a secret Output, encrypted in the state.
        aws.secretsmanager.SecretVersion(
            f"{name}-jwt-key-version", secret_id=secret.id,
            secret_string=pulumi.Output.secret(self.args.jwt_signing_key),
            opts=pulumi.ResourceOptions(parent=self))
        return secret

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

    def _create_functions(self) -> dict[str, LambdaFunction]:
        return {fn: self._create_function(fn, handler, f"{fn.replace('-', ' ')} (shop)")
                for fn, handler in HANDLERS.items()}

    def _create_function(self, fn: str, handler: str, description: str) -> LambdaFunction:
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
            fn,
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
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )


class ShopServices(pulumi.ComponentResource):
    """The `shop` namespace: database, credentials, the three services and their Istio resources."""

    namespace: pulumi.Output[str]
    database_host: pulumi.Output[str]

    def __init__(self, name: str, args: ShopServicesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-mesh:shop:ShopServices", name, None, opts)
        self.args = args
        settings, cluster = args.settings, args.cluster
        self.ns = k8s.core.v1.Namespace(
            f"{name}-ns", metadata={"name": settings.namespace, "labels": dict(ISTIO_INJECTION)},
            # The sidecar injector must exist before the first pod of an injected namespace.
            opts=k8s_opts(cluster.provider, self, cluster.mesh_ready))
        self.credentials = self._create_credentials(name)
        self.service_accounts = self._create_service_accounts(name)
        self.database = self._create_database(name)
        self.deployments = self._create_deployments(name)
        self.services = self._create_services(name)
        self.mesh = self._create_mesh(name)
        self.namespace = self.ns.metadata.name
        self.database_host = self.database.host
        self.register_outputs({"namespace": self.namespace, "database_host": self.database_host})

    @property
    def credentials_name(self) -> str:
        return f"{self.args.settings.namespace}-db"

    def _opts(self, depends_on: Sequence[pulumi.Resource] = ()) -> pulumi.ResourceOptions:
        return k8s_opts(self.args.cluster.provider, self, [self.ns, *depends_on])

    def _create_credentials(self, name: str) -> k8s.core.v1.Secret:
        # The password reaches pods only through this Secret (a secret Output, so encrypted in the state too).
        return k8s.core.v1.Secret(
            f"{name}-db-credentials",
            metadata={"name": self.credentials_name, "namespace": self.args.settings.namespace},
            type="Opaque",
            string_data={SECRET_USER_KEY: DB_USER,
                         SECRET_PASSWORD_KEY: pulumi.Output.secret(self.args.database.password)},
            opts=self._opts(),
        )

    def _create_service_accounts(self, name: str) -> dict[str, k8s.core.v1.ServiceAccount]:
        # One identity per service: AuthorizationPolicies tell callers apart by it.
        return {
            svc.name: k8s.core.v1.ServiceAccount(
                f"{name}-{svc.name}-sa",
                metadata={"name": svc.service_account, "namespace": self.args.settings.namespace,
                          "labels": {"app": svc.name}},
                automount_service_account_token=False,
                opts=self._opts(),
            )
            for svc in self.args.settings.services
        }

    def _create_database(self, name: str) -> Database:
        args = self.args
        cluster = InCluster(
            provider=args.cluster.provider,
            namespace=args.settings.namespace,
            credentials_secret=self.credentials_name,
            clients=tuple(svc.service_account for svc in args.settings.services),
            trust_domain=args.settings.ingress.trust_domain,
            depends_on=(self.ns, self.credentials, *args.cluster.mesh_ready),
            storage_class=args.cluster.storage_class,
            storage_ready=args.cluster.storage_ready,
        ) if args.database.mode == "incluster" else None
        return Database(f"{name}-db", DatabaseArgs(
            mode=args.database.mode,
            password=args.database.password,
            protect_data=args.protect_data,
            instance_class=args.database.instance_class,
            network=args.network,
            cluster=cluster,
        ), pulumi.ResourceOptions(parent=self))

    def _container(self, svc: ShopService) -> dict[str, Any]:
        args = self.args
        container = service_container(
            name=svc.name,
            image=args.images[svc.name].ref,
            env=service_environment(svc, self.database, log_level=args.log_level),
            port=svc.target_port,
        )
        container["env"] = sorted([
            *container["env"],
            secret_env("DATABASE_USER", self.credentials_name, SECRET_USER_KEY),
            secret_env("DATABASE_PASSWORD", self.credentials_name, SECRET_PASSWORD_KEY),
        ], key=lambda item: item["name"])
        return container

    def _create_deployments(self, name: str) -> dict[str, k8s.apps.v1.Deployment]:
        settings = self.args.settings
        deployments = {}
        for svc in settings.services:
            labels = svc.labels
            deployments[svc.name] = k8s.apps.v1.Deployment(
                f"{name}-{svc.name}",
                metadata={"name": deployment_name(svc.name, SHOP_VERSION), "namespace": settings.namespace,
                          "labels": labels},
                spec=deployment_spec(labels=labels, replicas=SERVICE_REPLICAS, container=self._container(svc),
                                     service_account=svc.service_account),
                # After the database exists (an RDS instance takes minutes; the rollout would time out waiting).
                # Its image pushed first (a pod created earlier would sit in ImagePullBackOff).
                opts=self._opts([self.service_accounts[svc.name], self.credentials, *self.database.ready,
                                 *self.args.cluster.mesh_ready, *self.args.images[svc.name].depends_on]),
            )
        return deployments

    def _create_services(self, name: str) -> dict[str, k8s.core.v1.Service]:
        settings = self.args.settings
        return {
            svc.name: k8s.core.v1.Service(
                f"{name}-{svc.name}-service",
                metadata={"name": svc.name, "namespace": settings.namespace, "labels": {"app": svc.name}},
                spec={
                    "type": "ClusterIP",
                    "selector": svc.selector,
                    # `http` tells Istio to route HTTP (retries, outlier detection), not opaque TCP.
                    "ports": [{"name": "http", "port": svc.port, "targetPort": svc.target_port, "protocol": "TCP",
                               "appProtocol": "http"}],
                },
                opts=self._opts(),
            )
            for svc in settings.services
        }

    def _create_mesh(self, name: str) -> dict[str, k8s.apiextensions.CustomResource]:
        args = self.args
        # The Gateway is the platform's (one per ingress); the VirtualService binds to it by `<namespace>/<name>`.
        manifests = shop_manifests(args.settings, include_gateway=False)
        created: dict[str, k8s.apiextensions.CustomResource] = {}
        for manifest in manifests:
            depends: list[pulumi.Resource] = [*args.cluster.mesh_ready]  # the CRDs (istio-base) and istiod's webhook
            if manifest["kind"] == "VirtualService":
                # Routes last: destinations (and their mTLS/circuit-breaker policy) exist before traffic moves.
                depends += [*(r for k, r in created.items() if k.startswith("DestinationRule/")),
                            *self.services.values()]
                if args.cluster.gateway is not None:
                    depends.append(args.cluster.gateway)
            created[f"{manifest['kind']}/{manifest['metadata']['name']}"] = self._custom_resource(
                name, manifest, depends)
        if args.edge is not None:
            edge_resources(name, args.settings, args.edge, self._opts(args.cluster.mesh_ready))
        return created

    def _custom_resource(self, name: str, manifest: Manifest,
                         depends_on: Sequence[pulumi.Resource]) -> k8s.apiextensions.CustomResource:
        kind = manifest["kind"].lower()
        return k8s.apiextensions.CustomResource(
            f"{name}-{kind}-{manifest['metadata']['name']}", api_version=manifest["apiVersion"],
            kind=manifest["kind"], metadata=manifest["metadata"], spec=manifest["spec"],
            opts=self._opts(depends_on))


class Shop(pulumi.ComponentResource):
    """The whole shop: its functions on AWS and its services in the mesh."""

    users_table_name: pulumi.Output[str]
    orders_table_name: pulumi.Output[str]
    idempotency_table_name: pulumi.Output[str]
    ingress_url: pulumi.Output[str]
    namespace: pulumi.Output[str]

    def __init__(self, name: str, args: ShopArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-mesh:shop:Shop", name, None, opts)
        functions, services = args.functions, args.services
        if args.service_auth is not None:
            self.service_auth = ServiceAuth(f"{name}-service-auth", args.service_auth,
                                            pulumi.ResourceOptions(parent=self))
            functions = replace(functions, service_token=self.service_auth.access)
            services = replace(services, edge=EdgeAuth(identity=args.service_auth.identity,
                                                       jwks=self.service_auth.jwks, other_hosts=args.other_hosts))
        self.backend = ShopFunctions(f"{name}-functions", functions, pulumi.ResourceOptions(parent=self))
        self.mesh = ShopServices(f"{name}-services", services, pulumi.ResourceOptions(parent=self))
        #: x-function name -> function, for the HttpApi (the authorizer separately).
        self.functions: dict[str, LambdaFunction] = dict(self.backend.functions)
        self.authorizer = self.backend.authorizer
        self.users_table_name = self.backend.users_table_name
        self.orders_table_name = self.backend.orders_table_name
        self.idempotency_table_name = self.backend.idempotency_table_name
        self.ingress_url = self.backend.services_url
        self.namespace = self.mesh.namespace
        self.register_outputs({"users_table_name": self.users_table_name, "orders_table_name": self.orders_table_name,
                               "idempotency_table_name": self.idempotency_table_name,
                               "ingress_url": self.ingress_url, "namespace": self.namespace})


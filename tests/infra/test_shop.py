"""The shop under the recording mocks: tables, functions and roles, VPC placement, secrets, Kubernetes and Istio.

The program is the platform plus the shop plus the REST API over the shop's routes (what `__main__.py` composes,
without the other components), captured once per config for the whole session. `test_shop_main.py` checks
`__main__.py` itself.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pulumi
import pytest
from pydantic import BaseModel

from functions.auth.settings import AuthorizerEnv
from functions.auth.settings import Env as AuthEnv
from functions.common.settings import RUNTIME_ENVIRONMENT, load_env
from functions.orders import adapters as orders_adapters
from functions.orders.settings import Env as OrdersEnv
from functions.orders.settings import ReadEnv as OrdersReadEnv
from infra import config, openapi
from infra.api import HttpApi
from infra.config import ConfigError, stack_config_values
from infra.platform import Platform
from infra.shop import Shop
from infra.shop_functions import HANDLERS
from infra.wiring import api_args, check_shop_config, deployment_images, platform_args, shop_args
from services.inventory.settings import Settings as InventorySettings
from services.notification.settings import Settings as NotificationSettings
from services.product.settings import Settings as ProductSettings
from sim.capture import Graph, Resource, capture
from tests.infra.conftest import TEST_SECRETS

FUNCTION = "aws:lambda/function:Function"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
TABLE = "aws:dynamodb/table:Table"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
STATEFUL_SET = "kubernetes:apps/v1:StatefulSet"
K8S_SERVICE = "kubernetes:core/v1:Service"
K8S_SECRET = "kubernetes:core/v1:Secret"
RDS = "aws:rds/instance:Instance"
RELEASE = "kubernetes:helm.sh/v3:Release"
DESTINATION_RULE = "kubernetes:networking.istio.io/v1:DestinationRule"
VIRTUAL_SERVICE = "kubernetes:networking.istio.io/v1:VirtualService"
AUTHORIZATION_POLICY = "kubernetes:security.istio.io/v1:AuthorizationPolicy"
PEER_AUTHENTICATION = "kubernetes:security.istio.io/v1:PeerAuthentication"
SHOP_FUNCTIONS = (*HANDLERS, "auth-authorizer")
ORDER_FUNCTIONS = ("orders-create", "orders-get", "orders-list")
AUTH_FUNCTIONS = ("auth-register", "auth-token", "auth-authorizer")
#: The shop's functions are children of `shop-functions`, named after it.
SHOP_FUNCTIONS_PREFIX = "shop-functions-"
SERVICES: dict[str, type[BaseModel]] = {
    "inventory": InventorySettings, "product": ProductSettings, "notification": NotificationSettings}
# AWSLambdaVPCAccessExecutionRole's EC2 actions: what Lambda needs to manage a VPC function's network interfaces.
LAMBDA_ENI_ACTIONS = {"ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets",
                      "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"}
JWT_KEY = TEST_SECRETS["jwtSigningKey"]
DB_PASSWORD = TEST_SECRETS["dbPassword"]


def shop_spec() -> dict[str, Any]:
    """The OpenAPI document restricted to the shop's operations (the TODO routes belong to TodosApi)."""
    spec = openapi.load_spec()
    spec["paths"] = {path: item for path, item in spec["paths"].items()
                     if any(isinstance(op, dict) and op.get("x-function") in HANDLERS for op in item.values())}
    return spec


def shop_program() -> None:
    cfg, secrets = config.load()
    platform = Platform("platform", platform_args(cfg))
    shop = Shop("shop", shop_args(cfg, secrets, platform.facts, deployment_images("containers", cfg, platform)),
                platform.in_cluster())
    HttpApi("api", api_args(cfg, shop_spec(), shop.functions, authorizer=shop.authorizer))
    pulumi.export("ingressHostname", platform.ingress_hostname)
    pulumi.export("shopIngressUrl", shop.ingress_url)


@cache
def shop_graph(**overrides: Any) -> Graph:
    """One capture per distinct config for the whole session (graphs are read-only in tests)."""
    return capture(shop_program, stack_config_values("dev", overrides, secrets=TEST_SECRETS), stack="dev")


@pytest.fixture(scope="module")
def graph() -> Graph:
    return shop_graph()


@pytest.fixture(scope="module")
def incluster() -> Graph:
    return shop_graph(databaseMode="incluster")


# --- helpers ----------------------------------------------------------------------------------------------

def function(graph: Graph, name: str) -> Resource:
    return graph.one(FUNCTION, f"{SHOP_FUNCTIONS_PREFIX}{name}-function")


def statements(graph: Graph, name: str) -> list[dict[str, Any]]:
    """The function's role policy without the logging statement every function has."""
    doc = json.loads(graph.one(ROLE_POLICY, f"{SHOP_FUNCTIONS_PREFIX}{name}-policy").inputs["policy"])
    return [st for st in doc["Statement"] if st.get("Sid") != "WriteOwnLogs"]


def table(graph: Graph, role: str) -> Resource:
    return graph.one(TABLE, f"shop-functions-{role}")


def k8s_named(graph: Graph, type_token: str, name: str) -> Resource:
    found = [r for r in graph.of_type(type_token) if (r.inputs.get("metadata") or {}).get("name") == name]
    assert len(found) == 1, f"expected one {type_token} named {name}, got {[r.urn for r in found]}"
    return found[0]


def shop_resources(graph: Graph) -> list[Resource]:
    """Every resource under the Shop component (children of children included)."""
    root = graph.one("serverless-mesh:shop:Shop")
    inside, frontier = [], [root.urn]
    while frontier:
        parent = frontier.pop()
        for r in graph.resources:
            if r.parent == parent:
                inside.append(r)
                frontier.append(r.urn)
    return inside


def container(resource: Resource) -> dict[str, Any]:
    containers = resource.inputs["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def env_of(item: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in item["env"]}


def paths_holding(value: Any, needle: str, path: str = "") -> list[str]:
    """Every path in `value` whose string contains `needle`."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in paths_holding(v, needle, f"{path}.{k}" if path else str(k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in paths_holding(v, needle, f"{path}[{i}]")]
    return [path] if isinstance(value, str) and needle in value else []


# --- tables -----------------------------------------------------------------------------------------------

def test_users_table_is_keyed_by_username(graph: Graph) -> None:
    users = table(graph, "users")
    assert users.inputs["hashKey"] == "username" and "rangeKey" not in users.inputs
    assert users.inputs["billingMode"] == "PAY_PER_REQUEST"


def test_orders_table_has_the_by_user_index_newest_first_key(graph: Graph) -> None:
    orders = table(graph, "orders")
    assert orders.inputs["hashKey"] == "id"
    assert orders.inputs["globalSecondaryIndexes"] == [
        {"name": orders_adapters.BY_USER, "projectionType": "ALL", "keySchemas": [
            {"attributeName": "userId", "keyType": "HASH"}, {"attributeName": "createdAt", "keyType": "RANGE"}]}]


def test_idempotency_table_expires_records_on_powertools_expiration_attribute(graph: Graph) -> None:
    idempotency = table(graph, "idempotency")
    assert idempotency.inputs["hashKey"] == "id"
    assert idempotency.inputs["ttl"] == {"attributeName": "expiration", "enabled": True}


def test_dev_tables_and_secret_stay_destroyable(graph: Graph) -> None:
    for role in ("users", "orders", "idempotency"):
        assert table(graph, role).protect is False and table(graph, role).inputs["deletionProtectionEnabled"] is False
    secret = graph.one("aws:secretsmanager/secret:Secret", "shop-functions-jwt-key")
    assert secret.inputs["recoveryWindowInDays"] == 0


def test_protect_data_protects_tables_secret_and_database() -> None:
    protected = shop_graph(protectData=True)
    for role in ("users", "orders", "idempotency"):
        assert table(protected, role).protect is True, role
    assert protected.one("aws:secretsmanager/secret:Secret", "shop-functions-jwt-key").inputs[
        "recoveryWindowInDays"] == 30
    rds = protected.one(RDS)
    assert rds.protect is True
    assert rds.inputs["deletionProtection"] is True and rds.inputs["skipFinalSnapshot"] is False
    assert rds.inputs["finalSnapshotIdentifier"]


# --- functions and roles ----------------------------------------------------------------------------------

def test_functions_run_the_group_handlers_on_python312_arm64(graph: Graph) -> None:
    for name, handler in {**HANDLERS, "auth-authorizer": "functions.auth.handlers.authorizer"}.items():
        fn = function(graph, name)
        assert fn.inputs["handler"] == handler, name
        assert fn.inputs["runtime"] == "python3.12" and fn.inputs["architectures"] == ["arm64"], name


def test_each_role_allows_exactly_what_its_function_calls(graph: Graph) -> None:
    users, orders, idem = (table(graph, r).outputs["arn"] for r in ("users", "orders", "idempotency"))
    secret = graph.one("aws:secretsmanager/secret:Secret", "shop-functions-jwt-key").outputs["arn"]
    service_key = graph.one("aws:secretsmanager/secret:Secret", "shop-service-auth-key-secret").outputs["arn"]
    expected = {
        "auth-register": {("dynamodb:PutItem",): [users]},
        "auth-token": {("dynamodb:GetItem",): [users], ("secretsmanager:GetSecretValue",): [secret]},
        "auth-authorizer": {("secretsmanager:GetSecretValue",): [secret]},
        "orders-create": {("dynamodb:GetItem", "dynamodb:PutItem"): [orders],
                          ("dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"):
                              [idem],
                          ("secretsmanager:GetSecretValue",): [service_key]},
        "orders-get": {("dynamodb:GetItem",): [orders]},
        "orders-list": {("dynamodb:Query",): [f"{orders}/index/byUser"]},
    }
    for name, wanted in expected.items():
        got = {tuple(st["Action"]): st["Resource"] for st in statements(graph, name)
               if not st["Action"][0].startswith("ec2:")}
        assert got == wanted, name


def test_no_shop_policy_uses_a_wildcard_action(graph: Graph) -> None:
    for name in SHOP_FUNCTIONS:
        doc = json.loads(graph.one(ROLE_POLICY, f"{SHOP_FUNCTIONS_PREFIX}{name}-policy").inputs["policy"])
        for st in doc["Statement"]:
            assert all("*" not in action for action in st["Action"]), f"{name}: {st}"


def test_the_only_wildcard_resources_are_eni_management_narrowed_by_conditions(graph: Graph) -> None:
    vpc = graph.one("aws:ec2/vpc:Vpc")
    for name in SHOP_FUNCTIONS:
        for st in statements(graph, name):
            if "*" not in st["Resource"]:
                continue
            assert st["Resource"] == ["*"], f"{name}: {st}"
            assert st["Sid"] in ("LambdaEniDescribe", "LambdaEniManage"), f"{name}: {st}"
            assert set(st["Action"]) <= LAMBDA_ENI_ACTIONS, f"{name}: {st}"
            assert st["Condition"], f"{name}: {st} is not narrowed"
        manage = [st for st in statements(graph, name) if st.get("Sid") == "LambdaEniManage"]
        if manage:
            assert manage[0]["Condition"] == {"StringEquals": {
                "ec2:Vpc": f"arn:aws:ec2:eu-west-1:123456789012:vpc/{vpc.id}"}}


def test_only_order_functions_may_manage_network_interfaces(graph: Graph) -> None:
    for name in SHOP_FUNCTIONS:
        ec2 = [st for st in statements(graph, name) if st["Action"][0].startswith("ec2:")]
        assert bool(ec2) == (name in ORDER_FUNCTIONS), name


def test_each_function_environment_is_exactly_its_env_model(graph: Graph) -> None:
    models: dict[str, type[BaseModel]] = {
        "auth-register": AuthEnv, "auth-token": AuthEnv, "auth-authorizer": AuthorizerEnv, "orders-create": OrdersEnv,
        "orders-get": OrdersReadEnv, "orders-list": OrdersReadEnv}
    for name, model in models.items():
        variables = function(graph, name).inputs["environment"]["variables"]
        assert set(variables) == set(model.model_fields) | set(RUNTIME_ENVIRONMENT), name
        load_env(model, variables)  # the values satisfy the model too (types, URL, ranges)


def test_environment_names_the_shops_tables_and_secret(graph: Graph) -> None:
    secret = graph.one("aws:secretsmanager/secret:Secret", "shop-functions-jwt-key").outputs["arn"]
    token = function(graph, "auth-token").inputs["environment"]["variables"]
    assert token["USERS_TABLE_NAME"] == table(graph, "users").outputs["name"]
    assert token["JWT_SECRET_ARN"] == secret
    assert token["TOKEN_TTL_SECONDS"] == "900"
    assert function(graph, "auth-authorizer").inputs["environment"]["variables"]["JWT_SECRET_ARN"] == secret
    create = function(graph, "orders-create").inputs["environment"]["variables"]
    assert create["ORDERS_TABLE_NAME"] == table(graph, "orders").outputs["name"]
    assert create["IDEMPOTENCY_TABLE_NAME"] == table(graph, "idempotency").outputs["name"]


def test_k8s_api_url_is_the_ingress_gateway_load_balancer_hostname(graph: Graph) -> None:
    hostname = graph.exports["ingressHostname"]
    assert hostname.endswith(".elb.eu-west-1.amazonaws.com"), hostname
    url = function(graph, "orders-create").inputs["environment"]["variables"]["K8S_API_URL"]
    assert url == f"http://{hostname}"
    assert graph.exports["shopIngressUrl"] == url


# --- VPC placement ----------------------------------------------------------------------------------------

def orders_sg(graph: Graph) -> Resource:
    return graph.one(SECURITY_GROUP, "shop-functions-orders-sg")


def test_order_functions_run_in_the_private_subnets_with_the_orders_security_group(graph: Graph) -> None:
    private = sorted(r.id for r in graph.of_type("aws:ec2/subnet:Subnet") if "-private-" in r.name)
    assert len(private) == 2
    for name in ORDER_FUNCTIONS:
        vpc = function(graph, name).inputs["vpcConfig"]
        assert sorted(vpc["subnetIds"]) == private, name
        assert vpc["securityGroupIds"] == [orders_sg(graph).id], name


def test_auth_functions_run_outside_the_vpc(graph: Graph) -> None:
    for name in AUTH_FUNCTIONS:
        assert not function(graph, name).inputs.get("vpcConfig"), name


def test_orders_security_group_reaches_only_the_ingress_dynamodb_and_the_secrets_endpoint(graph: Graph) -> None:
    sg = orders_sg(graph)
    endpoint = graph.one("aws:ec2/vpcEndpoint:VpcEndpoint", "shop-functions-dynamodb-endpoint")
    secrets_sg = graph.one("aws:ec2/securityGroup:SecurityGroup", "shop-service-auth-secrets-endpoint-sg")
    assert sg.inputs["vpcId"] == graph.one("aws:ec2/vpc:Vpc").id
    assert not sg.inputs.get("ingress")
    rules = sorted((r["fromPort"], r["toPort"], r["protocol"], tuple(r.get("cidrBlocks") or ()),
                    tuple(r.get("prefixListIds") or ()), tuple(r.get("securityGroups") or ()))
                   for r in sg.inputs["egress"])
    assert rules == [(80, 80, "tcp", ("10.0.0.0/16",), (), ()),
                     (443, 443, "tcp", (), (), (secrets_sg.id,)),
                     (443, 443, "tcp", (), (endpoint.outputs["prefixListId"],), ())]


def test_the_service_token_key_is_reached_through_a_private_secrets_manager_endpoint(graph: Graph) -> None:
    endpoint = graph.one("aws:ec2/vpcEndpoint:VpcEndpoint", "shop-service-auth-secrets-endpoint")
    group = graph.one("aws:ec2/securityGroup:SecurityGroup", "shop-service-auth-secrets-endpoint-sg")
    assert endpoint.inputs["serviceName"] == "com.amazonaws.eu-west-1.secretsmanager"
    assert endpoint.inputs["vpcEndpointType"] == "Interface" and endpoint.inputs["privateDnsEnabled"] is True
    private_subnets = [r.id for r in graph.of_type("aws:ec2/subnet:Subnet") if "-private-" in r.name]
    assert sorted(endpoint.inputs["subnetIds"]) == sorted(private_subnets) and private_subnets
    assert endpoint.inputs["securityGroupIds"] == [group.id]
    assert [(r["fromPort"], r["cidrBlocks"]) for r in group.inputs["ingress"]] == [(443, ["10.0.0.0/16"])]


def test_dynamodb_gateway_endpoint_serves_the_private_route_tables(graph: Graph) -> None:
    endpoint = graph.one("aws:ec2/vpcEndpoint:VpcEndpoint", "shop-functions-dynamodb-endpoint")
    assert endpoint.inputs["serviceName"] == "com.amazonaws.eu-west-1.dynamodb"
    assert endpoint.inputs["vpcEndpointType"] == "Gateway"
    private_tables = [r.id for r in graph.of_type("aws:ec2/routeTable:RouteTable") if "-private-" in r.name]
    assert endpoint.inputs["routeTableIds"] == private_tables and private_tables


# --- secrets ----------------------------------------------------------------------------------------------

def test_jwt_key_is_only_in_the_secret_version_and_marked_secret(graph: Graph) -> None:
    holders = {r.urn: paths_holding(r.inputs, JWT_KEY) for r in graph.resources}
    holders = {urn: paths for urn, paths in holders.items() if paths}
    version = graph.one("aws:secretsmanager/secretVersion:SecretVersion", "shop-functions-jwt-key-version")
    assert holders == {version.urn: ["secretString"]}
    assert "secretString" in version.secret_paths


def test_db_password_is_only_in_the_k8s_secret_and_the_rds_password_both_marked_secret(graph: Graph) -> None:
    holders = {r.urn: paths_holding(r.inputs, DB_PASSWORD) for r in graph.resources}
    holders = {urn: paths for urn, paths in holders.items() if paths}
    secret = k8s_named(graph, K8S_SECRET, "shop-db")
    rds = graph.one(RDS)
    assert holders == {secret.urn: ["stringData.password"], rds.urn: ["password"]}
    assert "stringData" in secret.secret_paths
    assert "password" in rds.secret_paths


def test_services_read_database_credentials_from_their_own_secret(graph: Graph) -> None:
    for svc in SERVICES:
        env = env_of(container(k8s_named(graph, DEPLOYMENT, f"{svc}-v1")))
        assert env["DATABASE_PASSWORD"] == {"secretKeyRef": {"name": f"shop-db-{svc}", "key": "password"}}, svc
        assert env["DATABASE_USER"] == {"secretKeyRef": {"name": f"shop-db-{svc}", "key": "username"}}, svc


# --- database ---------------------------------------------------------------------------------------------

def test_rds_runs_in_the_private_subnets_reachable_only_from_the_nodes_on_5432(graph: Graph) -> None:
    rds = graph.one(RDS)
    subnets = graph.one("aws:rds/subnetGroup:SubnetGroup")
    private = sorted(r.id for r in graph.of_type("aws:ec2/subnet:Subnet") if "-private-" in r.name)
    assert sorted(subnets.inputs["subnetIds"]) == private
    assert rds.inputs["dbSubnetGroupName"] == subnets.outputs["name"]
    assert rds.inputs["publiclyAccessible"] is False and rds.inputs["storageEncrypted"] is True
    sg = graph.one(SECURITY_GROUP, "shop-services-db-sg")
    assert rds.inputs["vpcSecurityGroupIds"] == [sg.id]
    node_sg = graph.one("aws:eks/cluster:Cluster").outputs["vpcConfig"]["clusterSecurityGroupId"]
    assert sg.inputs["ingress"] == [{"protocol": "tcp", "fromPort": 5432, "toPort": 5432,
                                     "securityGroups": [node_sg],
                                     "description": "PostgreSQL from the EKS nodes (the service pods)"}]
    assert sg.inputs["egress"] == []


def test_dev_rds_is_destroyable_and_sized_from_config(graph: Graph) -> None:
    rds = graph.one(RDS)
    assert rds.inputs["skipFinalSnapshot"] is True and rds.inputs["deletionProtection"] is False
    assert rds.inputs["instanceClass"] == "db.t4g.micro"
    assert rds.inputs["engine"] == "postgres"
    assert shop_graph(databaseInstanceClass="db.t4g.small").one(RDS).inputs["instanceClass"] == "db.t4g.small"


def test_services_connect_to_the_rds_address(graph: Graph) -> None:
    rds = graph.one(RDS)
    for svc in SERVICES:
        env = env_of(container(k8s_named(graph, DEPLOYMENT, f"{svc}-v1")))
        assert (env["DATABASE_HOST"], env["DATABASE_PORT"], env["DATABASE_NAME"]) == (
            rds.outputs["address"], "5432", rds.inputs["dbName"]), svc


def test_incluster_mode_runs_postgres_as_a_stateful_set_instead_of_rds(incluster: Graph) -> None:
    assert not incluster.of_type(RDS) and not incluster.of_type("aws:rds/subnetGroup:SubnetGroup")
    postgres = k8s_named(incluster, STATEFUL_SET, "postgres")
    env = env_of(container(postgres))
    assert env["POSTGRES_PASSWORD"] == {"secretKeyRef": {"name": "shop-db", "key": "password"}}
    assert container(postgres)["securityContext"]["runAsNonRoot"] is True
    service = k8s_named(incluster, K8S_SERVICE, "postgres")
    assert service.inputs["spec"]["ports"][0]["port"] == 5432
    inventory = env_of(container(k8s_named(incluster, DEPLOYMENT, "inventory-v1")))
    assert inventory["DATABASE_HOST"] == "postgres.shop.svc.cluster.local"


def test_incluster_postgres_accepts_only_the_shop_services_and_their_bootstrap(incluster: Graph) -> None:
    policy = k8s_named(incluster, AUTHORIZATION_POLICY, "postgres-allow").inputs["spec"]
    assert policy["selector"] == {"matchLabels": {"app": "postgres"}}
    [rule] = policy["rules"]
    assert sorted(rule["from"][0]["source"]["principals"]) == sorted(
        f"cluster.local/ns/shop/sa/{svc}" for svc in (*SERVICES, "db-bootstrap"))
    assert rule["to"] == [{"operation": {"ports": ["5432"]}}]


def test_incluster_db_password_is_only_in_the_k8s_secret(incluster: Graph) -> None:
    holders = [r.urn for r in incluster.resources if paths_holding(r.inputs, DB_PASSWORD)]
    assert holders == [k8s_named(incluster, K8S_SECRET, "shop-db").urn]


# --- Kubernetes workloads ---------------------------------------------------------------------------------

def test_every_kubernetes_resource_uses_the_platform_provider(graph: Graph, incluster: Graph) -> None:
    for g in (graph, incluster):
        provider = g.one("pulumi:providers:kubernetes")
        for r in shop_resources(g):
            if r.custom and r.type.startswith("kubernetes:"):
                assert r.provider and r.provider.startswith(provider.urn), r.urn


def test_shop_namespace_has_sidecar_injection(graph: Graph) -> None:
    ns = k8s_named(graph, "kubernetes:core/v1:Namespace", "shop")
    assert ns.inputs["metadata"]["labels"]["istio-injection"] == "enabled"


def test_deployments_run_their_image_pushed_to_ecr_at_the_services_tag_by_digest(graph: Graph) -> None:
    tagged = shop_graph(servicesTag="2.3.4")
    for svc in SERVICES:
        repo = graph.one("aws:ecr/repository:Repository", f"platform-ecr-{svc}").outputs["repositoryUrl"]
        image = graph.one("docker-build:index:Image", f"containers-{svc}")
        running = container(k8s_named(graph, DEPLOYMENT, f"{svc}-v1"))["image"]
        assert running == image.outputs["ref"] and running.startswith(f"{repo}:1.0.0-"), running
        assert "@sha256:" in running
        assert container(k8s_named(tagged, DEPLOYMENT, f"{svc}-v1"))["image"].startswith(f"{repo}:2.3.4-")


def test_service_environment_is_what_each_service_reads_and_binds_all_interfaces(graph: Graph) -> None:
    for svc, settings in SERVICES.items():
        env = env_of(container(k8s_named(graph, DEPLOYMENT, f"{svc}-v1")))
        assert set(env) <= set(settings.model_fields), f"{svc} sets {sorted(set(env) - set(settings.model_fields))}"
        assert env["HOST"] == "0.0.0.0" and env["PORT"] == "8080", svc


def test_deployments_probe_health_and_ready_with_restricted_pods(graph: Graph) -> None:
    for svc in SERVICES:
        deployment = k8s_named(graph, DEPLOYMENT, f"{svc}-v1")
        c = container(deployment)
        assert c["livenessProbe"]["httpGet"]["path"] == "/health", svc
        assert c["readinessProbe"]["httpGet"]["path"] == "/ready", svc
        assert c["resources"]["requests"] and c["resources"]["limits"], svc
        ctx = c["securityContext"]
        assert ctx["runAsNonRoot"] and not ctx["allowPrivilegeEscalation"] and ctx["capabilities"] == {"drop": ["ALL"]}
        pod = deployment.inputs["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == svc
        assert k8s_named(graph, "kubernetes:core/v1:ServiceAccount", svc)


def test_deployments_wait_for_the_database(graph: Graph) -> None:
    rds = graph.one(RDS)
    for svc in SERVICES:
        assert rds.urn in k8s_named(graph, DEPLOYMENT, f"{svc}-v1").dependencies, svc


def test_services_select_their_app_on_a_named_http_port(graph: Graph) -> None:
    for svc in SERVICES:
        spec = k8s_named(graph, K8S_SERVICE, svc).inputs["spec"]
        assert spec["selector"] == {"app": svc}
        assert spec["ports"] == [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP",
                                  "appProtocol": "http"}]


# --- Istio ------------------------------------------------------------------------------------------------

def test_inventory_destination_rule_carries_the_seeds_circuit_breaker(graph: Graph) -> None:
    policy = k8s_named(graph, DESTINATION_RULE, "inventory-dr").inputs["spec"]["trafficPolicy"]
    assert policy["connectionPool"] == {"tcp": {"maxConnections": 100},
                                        "http": {"http1MaxPendingRequests": 50, "maxRequestsPerConnection": 2}}
    assert policy["outlierDetection"] == {"consecutive5xxErrors": 5, "interval": "30s", "baseEjectionTime": "30s",
                                          "maxEjectionPercent": 50}
    assert policy["tls"] == {"mode": "ISTIO_MUTUAL"}


def test_circuit_breaker_values_come_from_config() -> None:
    tuned = shop_graph(inventoryMaxConnections=7, inventoryMaxPendingRequests=3, inventoryMaxRequestsPerConnection=9,
                       inventoryConsecutive5xxErrors=2, inventoryEjectionInterval="10s",
                       inventoryBaseEjectionTime="1m", inventoryMaxEjectionPercent=20)
    policy = k8s_named(tuned, DESTINATION_RULE, "inventory-dr").inputs["spec"]["trafficPolicy"]
    assert policy["connectionPool"] == {"tcp": {"maxConnections": 7},
                                        "http": {"http1MaxPendingRequests": 3, "maxRequestsPerConnection": 9}}
    assert policy["outlierDetection"] == {"consecutive5xxErrors": 2, "interval": "10s", "baseEjectionTime": "1m",
                                          "maxEjectionPercent": 20}


def test_only_inventory_has_a_circuit_breaker(graph: Graph) -> None:
    for svc in ("product", "notification"):
        policy = k8s_named(graph, DESTINATION_RULE, f"{svc}-dr").inputs["spec"]["trafficPolicy"]
        assert policy == {"tls": {"mode": "ISTIO_MUTUAL"}}, svc


def test_virtual_service_routes_each_prefix_to_its_service_through_the_platform_gateway(graph: Graph) -> None:
    vs = k8s_named(graph, VIRTUAL_SERVICE, "shop-vs")
    spec = vs.inputs["spec"]
    assert spec["gateways"] == ["istio-ingress/ingress"]
    routes: dict[str, set[str]] = {}
    for route in spec["http"]:
        [destination] = route["route"]
        for match in route["match"]:
            uri = match["uri"].get("exact") or match["uri"]["prefix"].rstrip("/")
            routes.setdefault(uri, set()).add(destination["destination"]["host"])
    assert routes == {"/api/inventory": {"inventory.shop.svc.cluster.local"},
                      "/api/products": {"product.shop.svc.cluster.local"},
                      "/api/notifications": {"notification.shop.svc.cluster.local"}}
    gateway = k8s_named(graph, "kubernetes:networking.istio.io/v1:Gateway", "ingress")
    assert gateway.urn in vs.dependencies
    assert not [r for r in shop_resources(graph) if r.type.endswith(":Gateway")], "the Gateway is the platform's"


def test_reads_retry_on_5xx_and_connect_failures_writes_only_when_never_sent(graph: Graph) -> None:
    for route in k8s_named(graph, VIRTUAL_SERVICE, "shop-vs").inputs["spec"]["http"]:
        retry_on = set(route["retries"]["retryOn"].split(","))
        if route["name"].endswith("-read"):
            assert {"5xx", "connect-failure"} <= retry_on, route["name"]
        else:
            assert "5xx" not in retry_on and "connect-failure" in retry_on, route["name"]


def test_authorization_policies_admit_only_the_ingress_gateway(graph: Graph) -> None:
    for svc in SERVICES:
        spec = k8s_named(graph, AUTHORIZATION_POLICY, f"{svc}-allow").inputs["spec"]
        assert spec["selector"] == {"matchLabels": {"app": svc}}
        assert spec["action"] == "ALLOW"
        assert spec["rules"] == [{"from": [{"source": {
            "principals": ["cluster.local/ns/istio-ingress/sa/istio-ingressgateway"]}}]}]


def test_shop_namespace_denies_by_default_with_strict_mtls(graph: Graph) -> None:
    deny = k8s_named(graph, AUTHORIZATION_POLICY, "deny-all")
    assert deny.inputs["metadata"]["namespace"] == "shop" and not deny.inputs.get("spec")
    mtls = k8s_named(graph, PEER_AUTHENTICATION, "default")
    assert mtls.inputs["metadata"]["namespace"] == "shop"
    assert mtls.inputs["spec"]["mtls"] == {"mode": "STRICT"}


def test_istio_resources_wait_for_istios_crds(graph: Graph, incluster: Graph) -> None:
    for g in (graph, incluster):
        base = next(r for r in g.of_type(RELEASE) if r.inputs["chart"] == "base")
        istio = [r for r in shop_resources(g) if ".istio.io/" in r.type]
        assert len(istio) >= 8
        for r in istio:
            assert base.urn in r.dependencies, r.urn


# --- the REST API -----------------------------------------------------------------------------------------

def body(graph: Graph) -> dict[str, Any]:
    return dict(json.loads(graph.one("aws:apigateway/restApi:RestApi").inputs["body"]))


def test_order_routes_require_the_jwt_authorizer_and_auth_routes_do_not(graph: Graph) -> None:
    rendered = body(graph)
    for path, method in (("/orders", "get"), ("/orders", "post"), ("/orders/{id}", "get")):
        assert rendered["paths"][path][method]["security"] == [{"jwt": []}], f"{method} {path}"
    for path in ("/auth/register", "/auth/token"):
        assert not rendered["paths"][path]["post"].get("security"), path


def test_authorizer_is_the_auth_function_with_ttl_from_config(graph: Graph) -> None:
    authorizer = body(graph)["components"]["securitySchemes"]["jwt"]["x-amazon-apigateway-authorizer"]
    assert authorizer["type"] == "request"
    assert authorizer["identitySource"] == "method.request.header.Authorization"
    assert authorizer["authorizerUri"] == function(graph, "auth-authorizer").outputs["invokeArn"]
    assert authorizer["authorizerResultTtlInSeconds"] == 300
    cached = shop_graph(authorizerCacheSeconds=60)
    assert body(cached)["components"]["securitySchemes"]["jwt"]["x-amazon-apigateway-authorizer"][
        "authorizerResultTtlInSeconds"] == 60


def test_api_gateway_may_invoke_the_authorizer_only_as_an_authorizer_of_this_api(graph: Graph) -> None:
    permission = graph.one("aws:lambda/permission:Permission", "api-invoke-authorizer")
    api = graph.one("aws:apigateway/restApi:RestApi")
    assert permission.inputs["function"] == function(graph, "auth-authorizer").outputs["name"]
    assert permission.inputs["principal"] == "apigateway.amazonaws.com"
    assert permission.inputs["sourceArn"] == f"{api.outputs['executionArn']}/authorizers/*"


def test_each_shop_route_invokes_its_function(graph: Graph) -> None:
    rendered = body(graph)
    for path, method, op in openapi.operations(shop_spec()):
        uri = rendered["paths"][path][method.lower()]["x-amazon-apigateway-integration"]["uri"]
        assert uri == function(graph, op["x-function"]).outputs["invokeArn"], f"{method} {path}"


# --- configuration ----------------------------------------------------------------------------------------

def test_rds_with_an_existing_cluster_is_refused_naming_the_keys() -> None:
    cfg = config.parse_stack_config({**stack_config_values("dev").project_raw(), "kubeconfig": "apiVersion: v1",
                                     "ingressInternal": "false"})
    with pytest.raises(ConfigError, match="databaseMode"):
        check_shop_config(cfg)


def test_internal_ingress_with_an_existing_cluster_is_refused_naming_the_keys() -> None:
    cfg = config.parse_stack_config({**stack_config_values("dev").project_raw(), "kubeconfig": "apiVersion: v1",
                                     "databaseMode": "incluster"})
    with pytest.raises(ConfigError, match="ingressInternal"):
        check_shop_config(cfg)

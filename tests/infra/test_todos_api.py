"""The TODO API's resources under the mocks: table, functions, roles, log groups, the REST API and its body."""

from __future__ import annotations

import json

import pytest

from functions.common.settings import RUNTIME_ENVIRONMENT
from functions.todos.permissions import TABLE_ACTIONS
from functions.todos.settings import Env as TodosEnv
from infra import openapi
from infra.todos import HANDLERS
from sim.capture import Graph, Resource
from tests.infra.conftest import Capture

FUNCTION = "aws:lambda/function:Function"


def todo_functions(graph: Graph) -> dict[str, Resource]:
    return {r.name.removesuffix("-function"): r for r in graph.of_type(FUNCTION) if r.name.startswith("todos-")}


def policy_of(graph: Graph, fn_name: str) -> dict[str, object]:
    policy = graph.one("aws:iam/rolePolicy:RolePolicy", f"{fn_name}-policy")
    return json.loads(policy.inputs["policy"])


def test_table_is_on_demand_keyed_by_id_with_recovery(dev_graph: Graph) -> None:
    table = dev_graph.one("aws:dynamodb/table:Table", "todos-table")
    assert table.inputs["billingMode"] == "PAY_PER_REQUEST"
    assert table.inputs["hashKey"] == "id"
    assert table.inputs["attributes"] == [{"name": "id", "type": "S"}]
    assert table.inputs["pointInTimeRecovery"] == {"enabled": True}
    assert table.inputs["deletionProtectionEnabled"] is False
    assert table.protect is False, "dev must stay destroyable"


def test_protect_data_protects_the_table(program_graph: Capture) -> None:
    graph = program_graph({"protectData": True})
    table = graph.one("aws:dynamodb/table:Table", "todos-table")
    assert table.inputs["deletionProtectionEnabled"] is True
    assert table.protect is True


def test_one_function_per_operation_on_python312_arm64(dev_graph: Graph) -> None:
    functions = todo_functions(dev_graph)
    assert set(functions) == set(HANDLERS)
    for name, fn in functions.items():
        assert fn.inputs["runtime"] == "python3.12", name
        assert fn.inputs["architectures"] == ["arm64"], name
        assert fn.inputs["handler"] == f"functions.todos.handlers.{HANDLERS[name]}", name
        assert fn.inputs["memorySize"] == 256 and fn.inputs["timeout"] == 10, name
        assert fn.inputs["layers"], f"{name} has no dependency layer"


def test_each_function_environment_is_exactly_what_its_code_reads(dev_graph: Graph) -> None:
    table = dev_graph.one("aws:dynamodb/table:Table", "todos-table")
    for name, fn in todo_functions(dev_graph).items():
        variables = fn.inputs["environment"]["variables"]
        assert set(variables) == set(TodosEnv.model_fields) | set(RUNTIME_ENVIRONMENT), name
        assert variables["TABLE_NAME"] == table.physical_name, name
        TodosEnv.model_validate(variables)  # the values satisfy the code's own model


def test_function_code_holds_only_its_package_and_common(dev_graph: Graph) -> None:
    fn = dev_graph.one(FUNCTION, "todos-create-function")
    files = set(fn.inputs["code"]["assets"])
    assert "functions/todos/handlers.py" in files and "functions/common/http.py" in files
    assert not [f for f in files if f.startswith(("tests/", "functions/images/", "functions/orders/"))]
    # Bytecode only for the runtime, compiled from the packed sources (never this machine's own __pycache__).
    assert not [f for f in files if f.endswith(".pyc") and ".cpython-312." not in f]


@pytest.mark.parametrize("fn_name", sorted(HANDLERS))
def test_role_allows_only_the_table_actions_its_handler_uses(dev_graph: Graph, fn_name: str) -> None:
    table_arn = dev_graph.one("aws:dynamodb/table:Table", "todos-table").outputs["arn"]
    log_arn = dev_graph.one("aws:cloudwatch/logGroup:LogGroup", f"{fn_name}-logs").outputs["arn"]
    statements = policy_of(dev_graph, fn_name)["Statement"]
    assert statements == [
        {"Sid": "WriteOwnLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": [f"{log_arn}:*"]},
        {"Sid": "TodosTable", "Effect": "Allow", "Action": sorted(TABLE_ACTIONS[HANDLERS[fn_name]]),
         "Resource": [table_arn]},
    ]


def test_no_policy_in_the_stack_grants_wildcards(dev_graph: Graph) -> None:
    for policy in dev_graph.of_type("aws:iam/rolePolicy:RolePolicy"):
        for st in json.loads(policy.inputs["policy"])["Statement"]:
            assert not [a for a in st["Action"] if "*" in a], policy.urn
            if st.get("Sid", "").startswith("LambdaEni"):
                # EC2 ENI calls take no resource-level scoping (infra/shop.py); they must carry a condition.
                assert st["Resource"] == ["*"] and st.get("Condition"), policy.urn
                continue
            assert not [r for r in st["Resource"] if r == "*" or r.endswith(":*:*")], policy.urn


def test_log_group_is_named_for_the_function_and_created_first(dev_graph: Graph) -> None:
    for name, fn in todo_functions(dev_graph).items():
        group = dev_graph.one("aws:cloudwatch/logGroup:LogGroup", f"{name}-logs")
        assert group.inputs["name"] == f"/aws/lambda/{fn.inputs['name']}"
        assert group.inputs["retentionInDays"] == 7  # Pulumi.dev.yaml
        assert group.urn in fn.dependencies, f"{fn.urn} does not wait for its log group"


def test_api_body_routes_exactly_the_documents_operations(dev_graph: Graph) -> None:
    body = json.loads(dev_graph.one("aws:apigateway/restApi:RestApi").inputs["body"])
    doc = openapi.load_spec()
    assert set(body["paths"]) == set(doc["paths"])
    for path, method, op in openapi.operations(doc):
        rendered = body["paths"][path][method.lower()]
        # By the deployed name the document's x-function gives (resource names carry their component's prefix).
        deployed = f"serverless-mesh-dev-{op['x-function']}"
        fn = next(f for f in dev_graph.of_type(FUNCTION) if f.inputs["name"] == deployed)
        integration = rendered["x-amazon-apigateway-integration"]
        assert integration["type"] == "aws_proxy" and integration["httpMethod"] == "POST"
        assert integration["uri"] == fn.outputs["invokeArn"], f"{method} {path}"
        assert rendered["operationId"] == op["operationId"]


def test_api_validates_requests_and_answers_cors_preflight(dev_graph: Graph) -> None:
    body = json.loads(dev_graph.one("aws:apigateway/restApi:RestApi").inputs["body"])
    assert body["x-amazon-apigateway-request-validator"] == "all"
    assert body["x-amazon-apigateway-request-validators"]["all"] == {
        "validateRequestBody": True, "validateRequestParameters": True}
    preflight = body["paths"]["/todos/{id}"]["options"]["x-amazon-apigateway-integration"]
    params = preflight["responses"]["default"]["responseParameters"]
    assert params["method.response.header.Access-Control-Allow-Methods"] == "'DELETE,GET,OPTIONS,PUT'"
    assert params["method.response.header.Access-Control-Allow-Origin"] == "'*'"
    errors = body["x-amazon-apigateway-gateway-responses"]["BAD_REQUEST_BODY"]
    assert '"code": "VALIDATION_ERROR"' in errors["responseTemplates"]["application/json"]
    assert "gatewayresponse.header.Access-Control-Allow-Origin" in errors["responseParameters"]


def test_stage_throttles_from_config(program_graph: Capture) -> None:
    graph = program_graph({"apiThrottleRateLimit": 25, "apiThrottleBurstLimit": 50})
    settings = graph.one("aws:apigateway/methodSettings:MethodSettings").inputs
    assert settings["methodPath"] == "*/*"
    assert settings["settings"]["throttlingRateLimit"] == 25
    assert settings["settings"]["throttlingBurstLimit"] == 50


def test_deployment_is_remade_when_the_body_changes(dev_graph: Graph) -> None:
    import hashlib

    api = dev_graph.one("aws:apigateway/restApi:RestApi")
    deployment = dev_graph.one("aws:apigateway/deployment:Deployment")
    assert deployment.inputs["triggers"]["body"] == hashlib.sha256(api.inputs["body"].encode()).hexdigest()


def test_each_function_may_be_invoked_only_on_its_own_route(dev_graph: Graph) -> None:
    execution_arn = dev_graph.one("aws:apigateway/restApi:RestApi").outputs["executionArn"]
    permissions = {p.inputs["function"]: p.inputs for p in dev_graph.of_type("aws:lambda/permission:Permission")}
    expected = {"todos-list": "GET/todos", "todos-create": "POST/todos", "todos-get": "GET/todos/*",
                "todos-update": "PUT/todos/*", "todos-delete": "DELETE/todos/*"}
    for name, route in expected.items():
        fn = dev_graph.one(FUNCTION, f"{name}-function")
        permission = permissions[fn.inputs["name"]]
        assert permission["principal"] == "apigateway.amazonaws.com"
        assert permission["sourceArn"] == f"{execution_arn}/*/{route}"


def test_exports_name_the_api_url_and_table(dev_graph: Graph) -> None:
    stage = dev_graph.one("aws:apigateway/stage:Stage")
    assert dev_graph.exports["apiUrl"] == stage.outputs["invokeUrl"]
    assert dev_graph.exports["todosTableName"] == dev_graph.one("aws:dynamodb/table:Table", "todos-table").physical_name


def test_every_child_resource_is_parented_to_a_component(dev_graph: Graph) -> None:
    stack = "pulumi:pulumi:Stack::serverless-mesh-dev"
    stack_children = [r for r in dev_graph.resources if r.parent and r.parent.endswith(stack)]
    loose = [r.urn for r in stack_children if r.custom and r.type != "aws:lambda/layerVersion:LayerVersion"]
    assert loose == [], f"resources outside any component: {loose}"

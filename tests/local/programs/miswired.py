"""A wiring bug the twin must catch: the TODO `get` handler deployed without `TABLE_NAME`."""

import pulumi
import pulumi_aws as aws

from infra.lambdas import assume_role_policy

role = aws.iam.Role("todos-get-role", assume_role_policy=assume_role_policy())
aws.lambda_.Function(
    "todos-get-function", name="miswired-todos-get", runtime="python3.12", architectures=["arm64"],
    handler="functions.todos.handlers.get_todo", code=pulumi.AssetArchive({}), role=role.arn,
    memory_size=256, timeout=10,
    environment=aws.lambda_.FunctionEnvironmentArgs(variables={"POWERTOOLS_SERVICE_NAME": "todos",
                                                               "LOG_LEVEL": "INFO"}))

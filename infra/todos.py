"""`TodosApi`: the TODO table and one least-privilege function per operation."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from functions.todos.permissions import TABLE_ACTIONS
from functions.todos.settings import Env as TodosEnv
from infra import tables
from infra.dynamo import create_table
from infra.lambdas import LambdaFunction, LambdaFunctionArgs, statement
from infra.packaging import code_archive

# x-function name in infra/openapi.yaml -> entry point in functions/todos/handlers.py
HANDLERS = {
    "todos-list": "list_todos",
    "todos-get": "get_todo",
    "todos-create": "create_todo",
    "todos-update": "update_todo",
    "todos-delete": "delete_todo",
}


@dataclass(frozen=True, kw_only=True)
class TodosApiArgs:
    memory_mb: int
    timeout_seconds: int
    log_retention_days: int
    protect_data: bool
    layers: tuple[pulumi.Input[str], ...] = ()
    log_level: str = "INFO"
    otlp_endpoint: str = ""
    """`OTEL_EXPORTER_OTLP_ENDPOINT` of the functions (the stack's `otlpEndpoint`; empty: tracing off)."""


class TodosApi(pulumi.ComponentResource):
    table_name: pulumi.Output[str]
    table_arn: pulumi.Output[str]

    def __init__(self, name: str, args: TodosApiArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-mesh:todos:TodosApi", name, None, opts)
        self.table = create_table(f"{name}-table", tables.TODOS, protect=args.protect_data, parent=self)
        self.functions = self._create_functions(name, args)
        self.table_name = self.table.name
        self.table_arn = self.table.arn
        self.register_outputs({"table_name": self.table_name, "table_arn": self.table_arn})

    def _create_functions(self, name: str, args: TodosApiArgs) -> dict[str, LambdaFunction]:
        code = code_archive(["todos"])
        functions = {}
        for fn_name, entry in HANDLERS.items():
            # `<name>-<operation>`: "todos-list" for the stack's TodosApi, as before the rule was written down.
            functions[fn_name] = LambdaFunction(
                f"{name}-{fn_name.removeprefix('todos-')}",
                LambdaFunctionArgs(
                    handler=f"functions.todos.handlers.{entry}",
                    code=code,
                    env_contract=TodosEnv.model_fields.keys(),
                    environment={"TABLE_NAME": self.table.name, "POWERTOOLS_SERVICE_NAME": "todos",
                                 "LOG_LEVEL": args.log_level, "OTEL_EXPORTER_OTLP_ENDPOINT": args.otlp_endpoint},
                    statements=[statement(TABLE_ACTIONS[entry], [self.table.arn], sid="TodosTable")],
                    memory_mb=args.memory_mb,
                    timeout_seconds=args.timeout_seconds,
                    log_retention_days=args.log_retention_days,
                    layers=args.layers,
                    description=f"{entry.replace('_', ' ')} (TODO API)",
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
        return functions

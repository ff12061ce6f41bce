"""DynamoDB actions each entry point performs on the todos table (pure data: the IAM policies are built from it).

Keyed by the function name in `functions.todos.handlers`. A test records the operations each handler really
calls and checks them against this table, so a policy can never lag behind the code.
"""

from __future__ import annotations

TABLE_ACTIONS: dict[str, tuple[str, ...]] = {
    "list_todos": ("dynamodb:Scan",),
    "get_todo": ("dynamodb:GetItem",),
    "create_todo": ("dynamodb:PutItem",),
    "update_todo": ("dynamodb:UpdateItem",),
    "delete_todo": ("dynamodb:DeleteItem",),
}

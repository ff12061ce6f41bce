"""DynamoDB adapter for `TodoRepository`: the only module of the group that talks to AWS.

Writes are conditional so the table never disagrees with the API: create never overwrites, update and delete
never touch (or resurrect) an item that does not exist. Listing is one Scan call with `Limit`, never a loop
over the table, so a page costs the same at a thousand items as at a million.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from functions.common import aws
from functions.common.errors import Conflict, ServiceUnavailable
from functions.todos.models import Todo

_THROTTLED = {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
_FIELDS = ("title", "description", "completed")


def _error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return code if isinstance(code, str) else None
    return None


def _value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    raise TypeError(f"unsupported attribute value {type(value).__name__}")


def to_item(todo: Todo) -> dict[str, Any]:
    return {name: _value(value) for name, value in todo.model_dump().items()}


def from_item(item: Mapping[str, Any]) -> Todo:
    return Todo(
        id=item["id"]["S"],
        title=item["title"]["S"],
        description=item.get("description", {}).get("S", ""),
        completed=bool(item.get("completed", {}).get("BOOL", False)),
        createdAt=item["createdAt"]["S"],
        updatedAt=item["updatedAt"]["S"],
    )


class DynamoTodoRepository:
    """Todos in one DynamoDB table keyed by `id` (see `infra.tables.TODOS`)."""

    def __init__(self, table_name: str, client: Any = None) -> None:
        self.table_name = table_name
        self._client = client

    @property
    def client(self) -> Any:
        # Resolved per use, not at construction, so a repository can be built before the endpoint is known.
        return self._client if self._client is not None else aws.client("dynamodb")

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any] | None:
        """Run one API call; None when its condition failed; throttling becomes a retryable 503."""
        try:
            result: dict[str, Any] = getattr(self.client, operation)(TableName=self.table_name, **kwargs)
            return result
        except Exception as exc:
            code = _error_code(exc)
            if code == "ConditionalCheckFailedException":
                return None
            if code in _THROTTLED:
                raise ServiceUnavailable("the todo table is busy, retry shortly", retry_after=1) from exc
            raise

    def put_new(self, todo: Todo) -> None:
        done = self._call("put_item", Item=to_item(todo), ConditionExpression="attribute_not_exists(id)")
        if done is None:
            raise Conflict(f"todo {todo.id!r} already exists", field="id")

    def get(self, todo_id: str) -> Todo | None:
        # Strongly consistent: a client that just created or updated a todo must read it back.
        result = self._call("get_item", Key={"id": {"S": todo_id}}, ConsistentRead=True) or {}
        item = result.get("Item")
        return from_item(item) if item else None

    def scan_page(self, limit: int, after: str | None) -> tuple[list[Todo], str | None]:
        kwargs: dict[str, Any] = {"Limit": limit}
        if after is not None:
            kwargs["ExclusiveStartKey"] = {"id": {"S": after}}
        result = self._call("scan", **kwargs) or {}
        items = [from_item(item) for item in result.get("Items", [])]
        last = result.get("LastEvaluatedKey")
        return items, (last["id"]["S"] if last else None)

    def update(self, todo_id: str, changes: Mapping[str, Any], updated_at: str) -> Todo | None:
        unknown = set(changes) - set(_FIELDS)
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        values = {**changes, "updatedAt": updated_at}
        names = {f"#{name}": name for name in values}
        result = self._call(
            "update_item",
            Key={"id": {"S": todo_id}},
            UpdateExpression="SET " + ", ".join(f"#{name} = :{name}" for name in values),
            # The condition is what makes PUT never create: without it UpdateItem upserts.
            ConditionExpression="attribute_exists(id)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={f":{name}": _value(value) for name, value in values.items()},
            ReturnValues="ALL_NEW",
        )
        return from_item(result["Attributes"]) if result is not None else None

    def delete(self, todo_id: str) -> bool:
        result = self._call("delete_item", Key={"id": {"S": todo_id}}, ConditionExpression="attribute_exists(id)")
        return result is not None

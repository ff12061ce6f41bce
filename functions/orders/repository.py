"""DynamoDB orders table adapter (hash key `id`, GSI `byUser` on userId/createdAt; see `infra.tables.ORDERS`)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from functions.orders.models import Order
from functions.orders.ports import PageKey

BY_USER = "byUser"


def _item(order: Order) -> dict[str, Any]:
    return {
        "id": {"S": order.id},
        "userId": {"S": order.userId},
        "productId": {"S": order.productId},
        "quantity": {"N": str(order.quantity)},
        "status": {"S": order.status},
        "createdAt": {"S": order.createdAt},
    }


def _order(item: dict[str, Any]) -> Order:
    return Order(
        id=item["id"]["S"],
        userId=item["userId"]["S"],
        productId=item["productId"]["S"],
        quantity=int(item["quantity"]["N"]),
        status=item["status"]["S"],
        createdAt=item["createdAt"]["S"],
    )


class DynamoOrderRepository:
    def __init__(self, *, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def add(self, order: Order) -> Order:
        try:
            self._client.put_item(
                TableName=self._table, Item=_item(order), ConditionExpression="attribute_not_exists(id)"
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            # Same deterministic id: a previous attempt stored it before crashing. Keep the first write.
            existing = self.get(order.id)
            if existing is None or existing.userId != order.userId:
                raise
            return existing
        return order

    def get(self, order_id: str) -> Order | None:
        found = self._client.get_item(TableName=self._table, Key={"id": {"S": order_id}}).get("Item")
        return _order(found) if found else None

    def list_for_user(self, user_id: str, *, limit: int, start: PageKey | None) -> tuple[list[Order], PageKey | None]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": BY_USER,
            "KeyConditionExpression": "userId = :u",
            "ExpressionAttributeValues": {":u": {"S": user_id}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if start:
            kwargs["ExclusiveStartKey"] = {name: {"S": value} for name, value in start.items()}
        page = self._client.query(**kwargs)
        last = page.get("LastEvaluatedKey")
        next_key = {name: value["S"] for name, value in last.items()} if last else None
        return [_order(item) for item in page.get("Items", [])], next_key

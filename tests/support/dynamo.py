"""Create DynamoDB tables in moto from the same specs the Pulumi components use."""

from __future__ import annotations

from typing import Any

from infra.tables import TableSpec


def create_table(client: Any, spec: TableSpec, name: str) -> None:
    """Create `name` with `spec`'s keys and indexes (on-demand), and wait until it is active."""
    key_schema = [{"AttributeName": spec.hash_key, "KeyType": "HASH"}]
    if spec.range_key:
        key_schema.append({"AttributeName": spec.range_key, "KeyType": "RANGE"})
    kwargs: dict[str, Any] = {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": n, "AttributeType": t} for n, t in spec.attributes.items()],
        "KeySchema": key_schema,
    }
    if spec.indexes:
        indexes = []
        for index in spec.indexes:
            schema = [{"AttributeName": index.hash_key, "KeyType": "HASH"}]
            if index.range_key:
                schema.append({"AttributeName": index.range_key, "KeyType": "RANGE"})
            indexes.append({"IndexName": index.name, "KeySchema": schema, "Projection": {"ProjectionType": "ALL"}})
        kwargs["GlobalSecondaryIndexes"] = indexes
    client.create_table(**kwargs)
    client.get_waiter("table_exists").wait(TableName=name)
    if spec.ttl_attribute:
        client.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute}
        )

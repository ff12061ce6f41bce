"""Key schemas of every DynamoDB table, written once.

Pure data (no Pulumi, no boto3): the components build `aws.dynamodb.Table` from these, and anything else that
needs the same tables (the local twin) creates them from the same specs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

AttributeType = Literal["S", "N", "B"]


@dataclass(frozen=True, kw_only=True)
class IndexSpec:
    """A global secondary index projecting all attributes."""

    name: str
    hash_key: str
    range_key: str | None = None


@dataclass(frozen=True, kw_only=True)
class TableSpec:
    """What a table's items are keyed by; every key attribute's type is declared in `attributes`."""

    hash_key: str
    range_key: str | None = None
    attributes: dict[str, AttributeType]
    indexes: tuple[IndexSpec, ...] = field(default_factory=tuple)
    ttl_attribute: str | None = None

    def __post_init__(self) -> None:
        keys: set[str | None] = {self.hash_key, self.range_key}
        for index in self.indexes:
            keys |= {index.hash_key, index.range_key}
        keys.discard(None)
        if keys != set(self.attributes):
            # DynamoDB rejects attribute definitions that are not used by a key, and keys that are not defined.
            raise ValueError(f"attributes {sorted(self.attributes)} must be exactly the key attributes {keys}")


TODOS = TableSpec(hash_key="id", attributes={"id": "S"})
IMAGE_METADATA = TableSpec(hash_key="id", attributes={"id": "S"})
USERS = TableSpec(hash_key="username", attributes={"username": "S"})
ORDERS = TableSpec(
    hash_key="id",
    attributes={"id": "S", "userId": "S", "createdAt": "S"},
    indexes=(IndexSpec(name="byUser", hash_key="userId", range_key="createdAt"),),
)
# Powertools idempotency's DynamoDB layout: partition key `id`, TTL on `expiration`.
IDEMPOTENCY = TableSpec(hash_key="id", attributes={"id": "S"}, ttl_attribute="expiration")

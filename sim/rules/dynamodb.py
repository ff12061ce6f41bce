"""DynamoDB: tables' key schemas and billing."""

from __future__ import annotations

from typing import Any

from sim.rules.core import CloudRejection, rule


@rule("aws:dynamodb/table:Table")
def _dynamodb_table(inputs: dict[str, Any]) -> None:
    defined = {a["name"] for a in inputs.get("attributes") or []}
    keys: set[Any] = {inputs.get("hashKey"), inputs.get("rangeKey")}
    for index in inputs.get("globalSecondaryIndexes") or []:
        keys |= {index.get("hashKey"), index.get("rangeKey")}
        keys |= {k.get("attributeName") for k in index.get("keySchemas") or []}
        if not index.get("projectionType"):
            raise CloudRejection(f"index {index.get('name')} needs a projectionType")
    keys.discard(None)
    if defined != keys:
        raise CloudRejection(f"attribute definitions {sorted(defined)} must equal the key attributes {sorted(keys)}")
    if inputs.get("billingMode") == "PROVISIONED" and not inputs.get("readCapacity"):
        raise CloudRejection("PROVISIONED billing needs read/write capacity")

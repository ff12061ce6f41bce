"""DynamoDB tables built from the specs in infra/tables.py, all with the same guarantees."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.tables import TableSpec


def create_table(name: str, spec: TableSpec, *, protect: bool, parent: pulumi.Resource) -> aws.dynamodb.Table:
    """On-demand, encrypted, point-in-time recovery on; deletion protection and `protect` follow `protectData`."""
    return aws.dynamodb.Table(
        name,
        aws.dynamodb.TableArgs(
            billing_mode="PAY_PER_REQUEST",
            hash_key=spec.hash_key,
            range_key=spec.range_key,
            attributes=[aws.dynamodb.TableAttributeArgs(name=n, type=t) for n, t in spec.attributes.items()],
            # Indexes use `key_schemas`: pulumi-aws 7 deprecates an index's hash_key/range_key.
            global_secondary_indexes=[
                aws.dynamodb.TableGlobalSecondaryIndexArgs(name=i.name, projection_type="ALL", key_schemas=[
                    aws.dynamodb.TableGlobalSecondaryIndexKeySchemaArgs(attribute_name=attr, key_type=kind)
                    for attr, kind in ((i.hash_key, "HASH"), (i.range_key, "RANGE")) if attr
                ])
                for i in spec.indexes
            ] or None,
            ttl=aws.dynamodb.TableTtlArgs(attribute_name=spec.ttl_attribute, enabled=True)
            if spec.ttl_attribute else None,
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(enabled=True),
            deletion_protection_enabled=protect,
        ),
        # protect blocks `pulumi destroy` on stacks that keep their data; dev leaves it off so destroy works.
        opts=pulumi.ResourceOptions(parent=parent, protect=protect),
    )

"""S3: bucket names, event notifications, encryption, versioning, ownership."""

from __future__ import annotations

import re
from typing import Any

from sim.rules.core import CloudRejection, rule

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@rule("aws:s3/bucket:Bucket")
def _bucket(inputs: dict[str, Any]) -> None:
    bucket = inputs.get("bucket")
    if bucket is not None and (not _BUCKET.match(bucket) or ".." in bucket):
        raise CloudRejection(f"bucket name {bucket!r} breaks S3's naming rules")


S3_NOTIFICATION_EVENTS = frozenset({
    "s3:ObjectCreated:*", "s3:ObjectCreated:Put", "s3:ObjectCreated:Post", "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload",
    "s3:ObjectRemoved:*", "s3:ObjectRemoved:Delete", "s3:ObjectRemoved:DeleteMarkerCreated",
    "s3:ObjectRestore:*", "s3:ObjectRestore:Post", "s3:ObjectRestore:Completed", "s3:ObjectRestore:Delete",
    "s3:ReducedRedundancyLostObject",
    "s3:Replication:*", "s3:Replication:OperationFailedReplication", "s3:Replication:OperationMissedThreshold",
    "s3:Replication:OperationReplicatedAfterThreshold", "s3:Replication:OperationNotTracked",
    "s3:LifecycleExpiration:*", "s3:LifecycleExpiration:Delete", "s3:LifecycleExpiration:DeleteMarkerCreated",
    "s3:LifecycleTransition", "s3:IntelligentTiering",
    "s3:ObjectTagging:*", "s3:ObjectTagging:Put", "s3:ObjectTagging:Delete", "s3:ObjectAcl:Put",
})
_NOTIFICATION_TARGETS = {"lambdaFunctions": ("lambdaFunctionArn", "lambda"), "queues": ("queueArn", "sqs"),
                         "topics": ("topicArn", "sns")}


def _events_overlap(a: str, b: str) -> bool:
    """`s3:ObjectCreated:*` covers every `s3:ObjectCreated:...` event."""
    def family(event: str) -> str:
        return event[:-1] if event.endswith(":*") else event
    return a == b or (a.endswith(":*") and b.startswith(family(a))) or (b.endswith(":*") and a.startswith(family(b)))


@rule("aws:s3/bucketNotification:BucketNotification")
def _bucket_notification(inputs: dict[str, Any]) -> None:
    configs: list[tuple[str, set[str], str, str]] = []
    for kind, (arn_key, service) in _NOTIFICATION_TARGETS.items():
        for config in inputs.get(kind) or []:
            arn = str(config.get(arn_key) or "")
            if not arn.startswith(f"arn:aws:{service}:"):
                raise CloudRejection(f"{kind} destination {arn!r} is not an {service} ARN")
            events = set(config.get("events") or [])
            if not events:
                raise CloudRejection(f"{kind} destination {arn} has no events")
            unknown = sorted(events - S3_NOTIFICATION_EVENTS)
            if unknown:
                raise CloudRejection(f"unknown S3 event names {unknown}")
            configs.append((arn, events, str(config.get("filterPrefix") or ""), str(config.get("filterSuffix") or "")))
    # S3: "Configurations overlap. Configurations on the same bucket cannot share a common event type" when
    # their key filters can match the same object.
    for i, (arn_a, events_a, prefix_a, suffix_a) in enumerate(configs):
        for arn_b, events_b, prefix_b, suffix_b in configs[i + 1:]:
            shared = any(_events_overlap(a, b) for a in events_a for b in events_b)
            prefixes = prefix_a.startswith(prefix_b) or prefix_b.startswith(prefix_a)
            suffixes = suffix_a.endswith(suffix_b) or suffix_b.endswith(suffix_a)
            if shared and prefixes and suffixes:
                raise CloudRejection(f"configurations for {arn_a} and {arn_b} overlap (a common event type on "
                                     f"prefixes {prefix_a!r}/{prefix_b!r}, suffixes {suffix_a!r}/{suffix_b!r})")


@rule("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
def _bucket_encryption(inputs: dict[str, Any]) -> None:
    rules = inputs.get("rules") or []
    if not rules:
        raise CloudRejection("needs at least one rule")
    for item in rules:
        default = item.get("applyServerSideEncryptionByDefault") or {}
        algorithm = default.get("sseAlgorithm")
        if algorithm not in ("AES256", "aws:kms", "aws:kms:dsse"):
            raise CloudRejection(f"sseAlgorithm {algorithm!r} is not AES256, aws:kms or aws:kms:dsse")
        if default.get("kmsMasterKeyId") and algorithm == "AES256":
            raise CloudRejection("kmsMasterKeyId needs sseAlgorithm aws:kms or aws:kms:dsse")


@rule("aws:s3/bucketVersioning:BucketVersioning")
def _bucket_versioning(inputs: dict[str, Any]) -> None:
    status = (inputs.get("versioningConfiguration") or {}).get("status")
    if status not in ("Enabled", "Suspended", "Disabled"):
        raise CloudRejection(f"status {status!r}")


@rule("aws:s3/bucketOwnershipControls:BucketOwnershipControls")
def _bucket_ownership(inputs: dict[str, Any]) -> None:
    ownership = (inputs.get("rule") or {}).get("objectOwnership")
    if ownership not in ("BucketOwnerEnforced", "BucketOwnerPreferred", "ObjectWriter"):
        raise CloudRejection(f"objectOwnership {ownership!r}")

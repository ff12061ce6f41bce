"""What AWS and Kubernetes would reject, checked when the recording mock registers a resource.

Pure functions of a resource's type, name and (resolved) inputs. Each raises `CloudRejection` with the resource
named, so a wiring bug fails a unit test or the local twin's deploy the way it would fail `pulumi up`.
Components add rules for the types they introduce with `@rule("<type token>")`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

Rule = Callable[[str, dict[str, Any]], None]
_RULES: dict[str, list[Rule]] = {}


class CloudRejection(ValueError):
    """The provider would refuse this resource."""


def rule(type_token: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        _RULES.setdefault(type_token, []).append(fn)
        return fn

    return register


def check(type_token: str, name: str, inputs: dict[str, Any]) -> None:
    for fn in _RULES.get(type_token, []) + _RULES.get("*", []):
        fn(name, inputs)


def reject(name: str, type_token: str, why: str) -> CloudRejection:
    return CloudRejection(f"{type_token} {name!r}: {why}")


# --- Lambda -----------------------------------------------------------------------------------------------
LAMBDA_RUNTIMES = {"python3.12", "python3.13"}
_ENV_NAME = re.compile(r"^[a-zA-Z]([a-zA-Z0-9_])+$")
_RESERVED_ENV = {"_HANDLER", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_EXECUTION_ENV", "AWS_LAMBDA_FUNCTION_NAME",
                 "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR"}


@rule("aws:lambda/function:Function")
def _lambda_function(name: str, inputs: dict[str, Any]) -> None:
    t = "aws:lambda/function:Function"
    if inputs.get("runtime") not in LAMBDA_RUNTIMES:
        raise reject(name, t, f"runtime {inputs.get('runtime')!r} is not one of {sorted(LAMBDA_RUNTIMES)}")
    if not 128 <= int(inputs.get("memorySize", 128)) <= 10240:
        raise reject(name, t, "memorySize must be 128 to 10240 MB")
    if not 1 <= int(inputs.get("timeout", 3)) <= 900:
        raise reject(name, t, "timeout must be 1 to 900 seconds")
    if not re.match(r"^[A-Za-z0-9_.]+\.[A-Za-z0-9_]+$", str(inputs.get("handler", ""))):
        raise reject(name, t, f"handler {inputs.get('handler')!r} is not module.function")
    if not str(inputs.get("role", "")).startswith("arn:aws:iam::"):
        raise reject(name, t, f"role {inputs.get('role')!r} is not an IAM role ARN")
    for arch in inputs.get("architectures") or ["x86_64"]:
        if arch not in ("arm64", "x86_64"):
            raise reject(name, t, f"architecture {arch!r}")
    variables = (inputs.get("environment") or {}).get("variables") or {}
    for key, value in variables.items():
        if not _ENV_NAME.match(key) or key in _RESERVED_ENV:
            raise reject(name, t, f"environment variable name {key!r} is invalid or reserved")
        if not isinstance(value, str):
            raise reject(name, t, f"environment variable {key} must be a string, got {type(value).__name__}")
    if len(json.dumps(variables)) > 4096:
        raise reject(name, t, "environment variables exceed 4 KB")


@rule("aws:lambda/permission:Permission")
def _lambda_permission(name: str, inputs: dict[str, Any]) -> None:
    if inputs.get("action") != "lambda:InvokeFunction":
        raise reject(name, "aws:lambda/permission:Permission", f"action {inputs.get('action')!r}")
    if not str(inputs.get("principal", "")).endswith(".amazonaws.com"):
        raise reject(name, "aws:lambda/permission:Permission", f"principal {inputs.get('principal')!r}")


# --- IAM --------------------------------------------------------------------------------------------------
def _policy(name: str, t: str, document: Any) -> dict[str, Any]:
    try:
        doc = json.loads(document) if isinstance(document, str) else document
    except json.JSONDecodeError as exc:
        raise reject(name, t, f"policy is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("Version") != "2012-10-17" or not doc.get("Statement"):
        raise reject(name, t, "policy needs Version 2012-10-17 and at least one Statement")
    for st in doc["Statement"]:
        if st.get("Effect") not in ("Allow", "Deny") or not (st.get("Action") or st.get("NotAction")):
            raise reject(name, t, f"statement {st} needs an Effect and Actions")
    return doc


@rule("aws:iam/role:Role")
def _iam_role(name: str, inputs: dict[str, Any]) -> None:
    doc = _policy(name, "aws:iam/role:Role", inputs.get("assumeRolePolicy"))
    for st in doc["Statement"]:
        if "Principal" not in st:
            raise reject(name, "aws:iam/role:Role", "a trust policy statement needs a Principal")


@rule("aws:iam/rolePolicy:RolePolicy")
def _iam_role_policy(name: str, inputs: dict[str, Any]) -> None:
    doc = _policy(name, "aws:iam/rolePolicy:RolePolicy", inputs.get("policy"))
    for st in doc["Statement"]:
        if "Resource" not in st and "NotResource" not in st:
            raise reject(name, "aws:iam/rolePolicy:RolePolicy", f"statement {st} has no Resource")


# --- DynamoDB, logs ---------------------------------------------------------------------------------------
@rule("aws:dynamodb/table:Table")
def _dynamodb_table(name: str, inputs: dict[str, Any]) -> None:
    t = "aws:dynamodb/table:Table"
    defined = {a["name"] for a in inputs.get("attributes") or []}
    keys: set[Any] = {inputs.get("hashKey"), inputs.get("rangeKey")}
    for index in inputs.get("globalSecondaryIndexes") or []:
        keys |= {index.get("hashKey"), index.get("rangeKey")}
        if not index.get("projectionType"):
            raise reject(name, t, f"index {index.get('name')} needs a projectionType")
    keys.discard(None)
    if defined != keys:
        raise reject(name, t, f"attribute definitions {sorted(defined)} must equal the key attributes {sorted(keys)}")
    if inputs.get("billingMode") == "PROVISIONED" and not inputs.get("readCapacity"):
        raise reject(name, t, "PROVISIONED billing needs read/write capacity")


LOG_RETENTION = {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                 3288, 3653}


@rule("aws:cloudwatch/logGroup:LogGroup")
def _log_group(name: str, inputs: dict[str, Any]) -> None:
    if inputs.get("retentionInDays") not in LOG_RETENTION:
        raise reject(name, "aws:cloudwatch/logGroup:LogGroup", f"retentionInDays {inputs.get('retentionInDays')}")


# --- API Gateway ------------------------------------------------------------------------------------------
@rule("aws:apigateway/restApi:RestApi")
def _rest_api(name: str, inputs: dict[str, Any]) -> None:
    body = inputs.get("body")
    if body is None:
        return
    try:
        doc = json.loads(body)
    except json.JSONDecodeError as exc:
        raise reject(name, "aws:apigateway/restApi:RestApi", f"body is not JSON: {exc}") from None
    if not str(doc.get("openapi", "")).startswith("3.0"):
        raise reject(name, "aws:apigateway/restApi:RestApi", "API Gateway imports OpenAPI 3.0.x documents")
    for path, ops in doc.get("paths", {}).items():
        for method, op in ops.items():
            if method.startswith("x-") or method == "parameters":
                continue
            integration = op.get("x-amazon-apigateway-integration")
            if not integration:
                raise reject(name, "aws:apigateway/restApi:RestApi", f"{method.upper()} {path} has no integration")
            if integration.get("type") == "aws_proxy" and integration.get("httpMethod") != "POST":
                raise reject(name, "aws:apigateway/restApi:RestApi",
                             f"{method.upper()} {path}: Lambda proxy integrations must call with httpMethod POST")


# --- S3 ---------------------------------------------------------------------------------------------------
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@rule("aws:s3/bucket:Bucket")
def _bucket(name: str, inputs: dict[str, Any]) -> None:
    bucket = inputs.get("bucket")
    if bucket is not None and (not _BUCKET.match(bucket) or ".." in bucket):
        raise reject(name, "aws:s3/bucket:Bucket", f"bucket name {bucket!r} breaks S3's naming rules")


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
def _bucket_notification(name: str, inputs: dict[str, Any]) -> None:
    t = "aws:s3/bucketNotification:BucketNotification"
    configs: list[tuple[str, set[str], str, str]] = []
    for kind, (arn_key, service) in _NOTIFICATION_TARGETS.items():
        for config in inputs.get(kind) or []:
            arn = str(config.get(arn_key) or "")
            if not arn.startswith(f"arn:aws:{service}:"):
                raise reject(name, t, f"{kind} destination {arn!r} is not an {service} ARN")
            events = set(config.get("events") or [])
            if not events:
                raise reject(name, t, f"{kind} destination {arn} has no events")
            unknown = sorted(events - S3_NOTIFICATION_EVENTS)
            if unknown:
                raise reject(name, t, f"unknown S3 event names {unknown}")
            configs.append((arn, events, str(config.get("filterPrefix") or ""), str(config.get("filterSuffix") or "")))
    # S3: "Configurations overlap. Configurations on the same bucket cannot share a common event type" when
    # their key filters can match the same object.
    for i, (arn_a, events_a, prefix_a, suffix_a) in enumerate(configs):
        for arn_b, events_b, prefix_b, suffix_b in configs[i + 1:]:
            shared = any(_events_overlap(a, b) for a in events_a for b in events_b)
            prefixes = prefix_a.startswith(prefix_b) or prefix_b.startswith(prefix_a)
            suffixes = suffix_a.endswith(suffix_b) or suffix_b.endswith(suffix_a)
            if shared and prefixes and suffixes:
                raise reject(name, t, f"configurations for {arn_a} and {arn_b} overlap (a common event type on "
                                      f"prefixes {prefix_a!r}/{prefix_b!r}, suffixes {suffix_a!r}/{suffix_b!r})")


@rule("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
def _bucket_encryption(name: str, inputs: dict[str, Any]) -> None:
    t = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    rules = inputs.get("rules") or []
    if not rules:
        raise reject(name, t, "needs at least one rule")
    for item in rules:
        default = item.get("applyServerSideEncryptionByDefault") or {}
        algorithm = default.get("sseAlgorithm")
        if algorithm not in ("AES256", "aws:kms", "aws:kms:dsse"):
            raise reject(name, t, f"sseAlgorithm {algorithm!r} is not AES256, aws:kms or aws:kms:dsse")
        if default.get("kmsMasterKeyId") and algorithm == "AES256":
            raise reject(name, t, "kmsMasterKeyId needs sseAlgorithm aws:kms or aws:kms:dsse")


@rule("aws:s3/bucketVersioning:BucketVersioning")
def _bucket_versioning(name: str, inputs: dict[str, Any]) -> None:
    status = (inputs.get("versioningConfiguration") or {}).get("status")
    if status not in ("Enabled", "Suspended", "Disabled"):
        raise reject(name, "aws:s3/bucketVersioning:BucketVersioning", f"status {status!r}")


@rule("aws:s3/bucketOwnershipControls:BucketOwnershipControls")
def _bucket_ownership(name: str, inputs: dict[str, Any]) -> None:
    ownership = (inputs.get("rule") or {}).get("objectOwnership")
    if ownership not in ("BucketOwnerEnforced", "BucketOwnerPreferred", "ObjectWriter"):
        raise reject(name, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", f"objectOwnership {ownership!r}")


# --- Lambda asynchronous invocation, SQS ------------------------------------------------------------------
_DESTINATION_SERVICES = ("sqs", "sns", "lambda", "events", "s3")


@rule("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig")
def _function_event_invoke_config(name: str, inputs: dict[str, Any]) -> None:
    t = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
    retries = inputs.get("maximumRetryAttempts")
    if retries is not None and not 0 <= int(retries) <= 2:
        raise reject(name, t, f"maximumRetryAttempts {int(retries)} must be 0 to 2")
    age = inputs.get("maximumEventAgeInSeconds")
    if age is not None and not 60 <= int(age) <= 21600:
        raise reject(name, t, f"maximumEventAgeInSeconds {int(age)} must be 60 to 21600")
    for outcome, config in (inputs.get("destinationConfig") or {}).items():
        destination = str((config or {}).get("destination") or "")
        if not any(destination.startswith(f"arn:aws:{s}:") for s in _DESTINATION_SERVICES):
            raise reject(name, t, f"{outcome} destination {destination!r} is not an SQS, SNS, Lambda, EventBridge "
                                  "or S3 ARN")


_SQS_RANGES = {"messageRetentionSeconds": (60, 1_209_600), "visibilityTimeoutSeconds": (0, 43_200),
               "delaySeconds": (0, 900), "receiveWaitTimeSeconds": (0, 20), "maxMessageSize": (1024, 1_048_576)}


@rule("aws:sqs/queue:Queue")
def _sqs_queue(name: str, inputs: dict[str, Any]) -> None:
    t = "aws:sqs/queue:Queue"
    for key, (lo, hi) in _SQS_RANGES.items():
        value = inputs.get(key)
        if value is not None and not lo <= int(value) <= hi:
            raise reject(name, t, f"{key} {int(value)} must be {lo} to {hi}")
    if inputs.get("sqsManagedSseEnabled") and inputs.get("kmsMasterKeyId"):
        raise reject(name, t, "sqsManagedSseEnabled and kmsMasterKeyId are exclusive")


# --- Kubernetes -------------------------------------------------------------------------------------------
_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@rule("*")
def _kubernetes_names(name: str, inputs: dict[str, Any]) -> None:
    meta = inputs.get("metadata")
    if not isinstance(meta, dict):
        return
    for key in ("name", "namespace"):
        value = meta.get(key)
        if value is not None and (len(value) > 253 or not _DNS1123.match(value)):
            raise CloudRejection(f"Kubernetes object {name!r}: metadata.{key} {value!r} is not a DNS-1123 name")
    for label, value in (meta.get("labels") or {}).items():
        if len(str(value)) > 63 or not re.match(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$", str(value)):
            raise CloudRejection(f"Kubernetes object {name!r}: label {label}={value!r} is not a valid label value")

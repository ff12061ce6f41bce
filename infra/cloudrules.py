"""What AWS and Kubernetes would reject, checked when the recording mock registers a resource.

Pure functions of a resource's type, name and (resolved) inputs. Each raises `CloudRejection` with the resource
named, so a wiring bug fails a unit test or the local twin's deploy the way it would fail `pulumi up`.
Components add rules for the types they introduce with `@rule("<type token>")`.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections.abc import Callable
from pathlib import Path
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
        keys |= {k.get("attributeName") for k in index.get("keySchemas") or []}
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


# --- Kubernetes workloads (Deployment, Service) -----------------------------------------------------------
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_IANA_SVC_NAME = re.compile(r"^(?=.*[a-z])[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # <= 15 chars, a letter, no "--"
_QUANTITY = re.compile(r"^(?P<n>\d+(?:\.\d+)?)(?P<unit>m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
_QUANTITY_FACTOR = {None: 1.0, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20,
                    "Gi": 2**30, "Ti": 2**40}
# Istio's protocol selection reads the Service port name `<protocol>[-<suffix>]` (or appProtocol); anything else
# is routed as opaque TCP and the VirtualService's HTTP routes never match (istioctl analyze IST0118).
ISTIO_PROTOCOLS = ("http", "http2", "https", "grpc", "grpc-web", "tcp", "tls", "mongo", "mysql", "redis", "udp")


def _whole(value: Any) -> int | None:
    """An integer input as the engine delivers it (protobuf numbers arrive as floats), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
        return None
    return int(value)


def _iana_port_name(value: str) -> bool:
    return len(value) <= 15 and "--" not in value and bool(_IANA_SVC_NAME.match(value))


def _quantity(name: str, t: str, value: Any) -> float:
    match = _QUANTITY.match(str(value))
    if not match:
        raise reject(name, t, f"resource quantity {value!r} is not a Kubernetes quantity")
    return float(match["n"]) * _QUANTITY_FACTOR[match["unit"]]


def _container(name: str, t: str, container: dict[str, Any]) -> None:
    cname = str(container.get("name") or "")
    if not _DNS_LABEL.match(cname) or len(cname) > 63:
        raise reject(name, t, f"container name {cname!r} is not a DNS-1123 label")
    if not container.get("image"):
        raise reject(name, t, f"container {cname} has no image")
    port_names = set()
    for port in container.get("ports") or []:
        number = _whole(port.get("containerPort"))
        if number is None or not 0 < number < 65536:
            raise reject(name, t, f"container {cname} port {number!r} is not 1 to 65535")
        if "name" in port:
            if not _iana_port_name(str(port["name"])):
                raise reject(name, t, f"container {cname} port name {port['name']!r} is not an IANA service name "
                                      "(<= 15 lowercase letters, digits, '-')")
            port_names.add(port["name"])
    for probe_key in ("startupProbe", "livenessProbe", "readinessProbe"):
        http_get = (container.get(probe_key) or {}).get("httpGet")
        if http_get and isinstance(http_get.get("port"), str) and http_get["port"] not in port_names:
            raise reject(name, t, f"container {cname} {probe_key} uses port {http_get['port']!r}, "
                                  f"which the container does not declare")
    for item in container.get("env") or []:
        if "=" in str(item.get("name", "=")) or not item.get("name"):
            raise reject(name, t, f"container {cname} env name {item.get('name')!r} is invalid")
        if "value" in item and not isinstance(item["value"], str):
            raise reject(name, t, f"container {cname} env {item['name']} must be a string, "
                                  f"got {type(item['value']).__name__}")
    requirements = container.get("resources") or {}
    requests, limits = requirements.get("requests") or {}, requirements.get("limits") or {}
    for key in set(requests) & set(limits):
        if _quantity(name, t, requests[key]) > _quantity(name, t, limits[key]):
            raise reject(name, t, f"container {cname} requests {key} {requests[key]} above its limit {limits[key]}")


@rule("kubernetes:apps/v1:Deployment")
def _deployment(name: str, inputs: dict[str, Any]) -> None:
    t = "kubernetes:apps/v1:Deployment"
    spec = inputs.get("spec") or {}
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not selector:
        raise reject(name, t, "spec.selector.matchLabels is empty")
    mismatched = {k: v for k, v in selector.items() if labels.get(k) != v}
    if mismatched:
        raise reject(name, t, f"selector {selector} does not match template labels {labels}")
    replicas = _whole(spec.get("replicas", 1))
    if replicas is None or replicas < 0:
        raise reject(name, t, f"replicas {replicas!r} must be a non-negative integer")
    pod = template.get("spec") or {}
    containers = pod.get("containers") or []
    if not containers:
        raise reject(name, t, "the pod template has no containers")
    names = [c.get("name") for c in containers]
    if len(set(names)) != len(names):
        raise reject(name, t, f"duplicate container names {names}")
    volumes = {v.get("name") for v in pod.get("volumes") or []}
    for container in containers:
        _container(name, t, container)
        for mount in container.get("volumeMounts") or []:
            if mount.get("name") not in volumes:
                raise reject(name, t, f"container {container.get('name')} mounts unknown volume {mount.get('name')!r}")


@rule("kubernetes:core/v1:Service")
def _service(name: str, inputs: dict[str, Any]) -> None:
    t = "kubernetes:core/v1:Service"
    spec = inputs.get("spec") or {}
    if spec.get("type", "ClusterIP") not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        raise reject(name, t, f"type {spec.get('type')!r}")
    ports = spec.get("ports") or []
    if not ports and spec.get("type") != "ExternalName":
        raise reject(name, t, "a Service needs at least one port")
    port_names = [p.get("name") for p in ports]
    if len(ports) > 1 and (not all(port_names) or len(set(port_names)) != len(port_names)):
        raise reject(name, t, f"with several ports each needs a unique name, got {port_names}")
    for port in ports:
        number = _whole(port.get("port"))
        target = port.get("targetPort", port.get("port"))
        if number is None or not 0 < number < 65536:
            raise reject(name, t, f"port {port.get('port')!r} is not 1 to 65535")
        if not isinstance(target, str) and not 0 < (_whole(target) or 0) < 65536:
            raise reject(name, t, f"targetPort {target} is not 1 to 65535")
        if isinstance(target, str) and not _iana_port_name(target):
            raise reject(name, t, f"targetPort {target!r} is neither a number nor an IANA service name")
        port_name = port.get("name")
        if port_name is not None and (len(port_name) > 63 or not _DNS_LABEL.match(port_name)):
            raise reject(name, t, f"port name {port_name!r} is not a DNS-1123 label")
        if not port.get("appProtocol") and not any(
                str(port_name or "") == p or str(port_name or "").startswith(p + "-") for p in ISTIO_PROTOCOLS):
            raise reject(name, t, f"port {number} name {port_name!r} does not declare its protocol "
                                  f"(<protocol>[-suffix] with one of {', '.join(ISTIO_PROTOCOLS)}, or appProtocol): "
                                  "Istio would route it as opaque TCP")


# --- Helm releases ----------------------------------------------------------------------------------------
_EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")


@rule("kubernetes:helm.sh/v3:Release")
def _helm_release(name: str, inputs: dict[str, Any]) -> None:
    t = "kubernetes:helm.sh/v3:Release"
    if not inputs.get("chart"):
        raise reject(name, t, "chart is not set")
    if not _EXACT_VERSION.match(str(inputs.get("version") or "")):
        raise reject(name, t, f"version {inputs.get('version')!r} is not an exact chart version (unpinned charts "
                              "change under a later `pulumi up`)")
    repo = str((inputs.get("repositoryOpts") or {}).get("repo") or "")
    if repo and not repo.startswith(("https://", "oci://")):
        raise reject(name, t, f"repository {repo!r} is not https:// or oci://")
    release = str(inputs.get("name") or "")
    if release and (len(release) > 53 or not _DNS_LABEL.match(release)):
        raise reject(name, t, f"release name {release!r} must be a DNS-1123 label of at most 53 characters")


# --- Istio custom resources: the vendored CRD schemas -----------------------------------------------------
_ISTIO_SCHEMAS = Path(__file__).resolve().parent.parent / "mesh" / "schemas"
_ISTIO_DEPRECATED = Path(__file__).resolve().parent / "istio_deprecated.json"


def _closed(node: Any) -> Any:
    # The API server prunes unknown fields silently; a misspelt field would vanish, so treat it as a rejection.
    if isinstance(node, dict):
        node = {k: _closed(v) for k, v in node.items()}
        if "properties" in node and "additionalProperties" not in node and \
                not node.get("x-kubernetes-preserve-unknown-fields"):
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [_closed(v) for v in node]
    return node


def _istio_duration_ok(value: Any) -> bool:
    from mesh.durations import parse_duration

    try:
        return bool(parse_duration(value) >= 0.001)
    except ValueError:
        return False


# The CRDs' CEL rules our specs can reach; other rules concern fields the builders never set.
_CEL_CHECKS: dict[str, Callable[[Any], bool]] = {
    "duration(self) >= duration('1ms')": _istio_duration_ok,
    'self.all(key, !key.contains("*"))': lambda v: all("*" not in k for k in v),
    "self.all(key, key.size() != 0)": lambda v: all(bool(k) for k in v),
    '!self.contains("*")': lambda v: "*" not in v,
}


@functools.cache
def _istio_validator(api_version: str, kind: str) -> Any:
    import jsonschema  # the validator is only needed where graphs are captured (tests, the local twin)
    from jsonschema import validators

    def cel(validator: Any, rules: list[dict[str, str]], instance: Any, schema: dict[str, Any]) -> Any:
        for item in rules:
            check = _CEL_CHECKS.get(item["rule"])
            if check is not None and not check(instance):
                yield jsonschema.ValidationError(f"{instance!r}: {item.get('message', item['rule'])}")

    index = json.loads((_ISTIO_SCHEMAS / "_index.json").read_text())["files"]
    schema = _closed(json.loads((_ISTIO_SCHEMAS / index[f"{api_version}/{kind}"]).read_text()))
    schema["properties"].pop("status", None)
    return validators.extend(jsonschema.Draft7Validator, {"x-kubernetes-validations": cel})(schema)


def _deprecated_paths(node: Any, pattern: list[str], where: str) -> list[str]:
    if not pattern:
        return [where]
    head, rest = pattern[0], pattern[1:]
    is_list = head.endswith("[]")
    key = head.removesuffix("[]")
    if not isinstance(node, dict) or key not in node:
        return []
    value = node[key]
    if not is_list:
        return _deprecated_paths(value, rest, f"{where}.{key}")
    found: list[str] = []
    for i, item in enumerate(value if isinstance(value, list) else []):
        found += _deprecated_paths(item, rest, f"{where}.{key}[{i}]")
    return found


# Fields the schemas still carry (undocumented) for old clients but Istio replaced; the deprecated.json list only
# has fields whose description says "Deprecated", so these are named here with their replacement.
ISTIO_RENAMED_FIELDS = {"consecutiveErrors": "consecutive5xxErrors", "mirrorPercent": "mirrorPercentage",
                        "mirror_percent": "mirrorPercentage", "allowOrigin": "allowOrigins"}


def _renamed_fields(node: Any, where: str) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ISTIO_RENAMED_FIELDS:
                found.append(f"{where}.{key} is replaced by {ISTIO_RENAMED_FIELDS[key]}")
            found += _renamed_fields(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _renamed_fields(value, f"{where}[{i}]")
    return found


def _istio_rule(api_version: str, kind: str) -> Rule:
    t = f"kubernetes:{api_version}:{kind}"

    def check_istio(name: str, inputs: dict[str, Any]) -> None:
        deprecated = json.loads(_ISTIO_DEPRECATED.read_text()).get(kind, [])
        for entry in deprecated:
            found = _deprecated_paths({"spec": inputs.get("spec") or {}}, entry["path"].split("."), "")
            if found:
                raise reject(name, t, f"{found[0].lstrip('.')} is deprecated ({entry['description']})")
        renamed = _renamed_fields(inputs.get("spec") or {}, "spec")
        if renamed:
            raise reject(name, t, renamed[0])
        errors = sorted(_istio_validator(api_version, kind).iter_errors({"spec": inputs.get("spec") or {}}),
                        key=lambda e: list(e.absolute_path))
        if errors:
            where = ".".join(str(p) for p in errors[0].absolute_path) or "spec"
            raise reject(name, t, f"{where}: {errors[0].message} (Istio CRD schema)")

    return check_istio


for _crd in json.loads((_ISTIO_SCHEMAS / "_index.json").read_text())["files"]:
    _api_group_version, _, _kind = _crd.rpartition("/")
    rule(f"kubernetes:{_api_group_version}:{_kind}")(_istio_rule(_api_group_version, _kind))


# --- EKS, EC2 networking, ECR, IAM OIDC -------------------------------------------------------------------
_IAM_PRINCIPAL = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+$")
EKS_LOG_TYPES = {"api", "audit", "authenticator", "controllerManager", "scheduler"}
EKS_AMI_TYPES = {"AL2023_ARM_64_STANDARD", "AL2023_x86_64_STANDARD", "AL2023_ARM_64_NVIDIA", "AL2023_x86_64_NVIDIA",
                 "AL2023_x86_64_NEURON", "BOTTLEROCKET_ARM_64", "BOTTLEROCKET_x86_64", "CUSTOM"}
_GRAVITON = re.compile(r"^[a-z]+\d+g[a-z]*\.")


@rule("aws:eks/cluster:Cluster")
def _eks_cluster(name: str, inputs: dict[str, Any]) -> None:
    t = "aws:eks/cluster:Cluster"
    if not re.match(r"^1\.\d{2}$", str(inputs.get("version") or "")):
        raise reject(name, t, f"version {inputs.get('version')!r} is not a Kubernetes minor version like 1.33")
    if not str(inputs.get("roleArn") or "").startswith("arn:aws:iam::"):
        raise reject(name, t, f"roleArn {inputs.get('roleArn')!r} is not an IAM role ARN")
    subnets = (inputs.get("vpcConfig") or {}).get("subnetIds") or []
    if len(subnets) < 2:
        raise reject(name, t, "EKS needs subnets in at least two availability zones")
    mode = (inputs.get("accessConfig") or {}).get("authenticationMode", "CONFIG_MAP")
    if mode not in ("API", "API_AND_CONFIG_MAP", "CONFIG_MAP"):
        raise reject(name, t, f"accessConfig.authenticationMode {mode!r}")
    unknown = set(inputs.get("enabledClusterLogTypes") or []) - EKS_LOG_TYPES
    if unknown:
        raise reject(name, t, f"unknown log types {sorted(unknown)}")


@rule("aws:eks/nodeGroup:NodeGroup")
def _eks_node_group(name: str, inputs: dict[str, Any]) -> None:
    t = "aws:eks/nodeGroup:NodeGroup"
    ami = inputs.get("amiType")
    if ami not in EKS_AMI_TYPES:
        raise reject(name, t, f"amiType {ami!r} is not one of {sorted(EKS_AMI_TYPES)}")
    types = inputs.get("instanceTypes") or []
    if not types:
        raise reject(name, t, "instanceTypes is empty")
    for instance_type in types:
        arm = bool(_GRAVITON.match(instance_type))
        if ami != "CUSTOM" and arm != ("ARM_64" in str(ami)):
            raise reject(name, t, f"instance type {instance_type} ({'arm64' if arm else 'x86_64'}) "
                                  f"cannot boot amiType {ami}")
    scaling = inputs.get("scalingConfig") or {}
    lo, want, hi = (_whole(scaling.get(k)) for k in ("minSize", "desiredSize", "maxSize"))
    if lo is None or want is None or hi is None or not 0 <= lo <= want <= hi or hi < 1:
        raise reject(name, t, f"scalingConfig needs 0 <= minSize <= desiredSize <= maxSize and maxSize >= 1, "
                              f"got {scaling}")
    if not inputs.get("subnetIds"):
        raise reject(name, t, "subnetIds is empty")


@rule("aws:eks/accessEntry:AccessEntry")
def _eks_access_entry(name: str, inputs: dict[str, Any]) -> None:
    principal = str(inputs.get("principalArn") or "")
    if not _IAM_PRINCIPAL.match(principal):
        raise reject(name, "aws:eks/accessEntry:AccessEntry",
                     f"principalArn {principal!r} must be an IAM role or user ARN (not an STS session)")
    if inputs.get("type", "STANDARD") not in ("STANDARD", "FARGATE_LINUX", "EC2_LINUX", "EC2_WINDOWS", "EC2"):
        raise reject(name, "aws:eks/accessEntry:AccessEntry", f"type {inputs.get('type')!r}")


@rule("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
def _eks_access_policy(name: str, inputs: dict[str, Any]) -> None:
    t = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
    if not str(inputs.get("policyArn") or "").startswith("arn:aws:eks::aws:cluster-access-policy/"):
        raise reject(name, t, f"policyArn {inputs.get('policyArn')!r} is not an EKS access policy")
    scope = inputs.get("accessScope") or {}
    if scope.get("type") not in ("cluster", "namespace"):
        raise reject(name, t, f"accessScope.type {scope.get('type')!r} is not cluster or namespace")
    if scope.get("type") == "namespace" and not scope.get("namespaces"):
        raise reject(name, t, "a namespace access scope needs namespaces")


def _cidr(name: str, t: str, value: Any) -> None:
    try:
        network = ipaddress.ip_network(str(value))
    except ValueError:
        raise reject(name, t, f"cidrBlock {value!r} is not a network address") from None
    if not 16 <= network.prefixlen <= 28:
        raise reject(name, t, f"cidrBlock {value} must be /16 to /28")


@rule("aws:ec2/vpc:Vpc")
def _vpc(name: str, inputs: dict[str, Any]) -> None:
    _cidr(name, "aws:ec2/vpc:Vpc", inputs.get("cidrBlock"))


@rule("aws:ec2/subnet:Subnet")
def _subnet(name: str, inputs: dict[str, Any]) -> None:
    _cidr(name, "aws:ec2/subnet:Subnet", inputs.get("cidrBlock"))


@rule("aws:ec2/routeTable:RouteTable")
def _route_table(name: str, inputs: dict[str, Any]) -> None:
    targets = ("gatewayId", "natGatewayId", "transitGatewayId", "vpcPeeringConnectionId", "networkInterfaceId",
               "vpcEndpointId", "egressOnlyGatewayId", "carrierGatewayId", "localGatewayId", "coreNetworkArn")
    for route in inputs.get("routes") or []:
        if sum(1 for k in targets if route.get(k)) != 1:
            raise reject(name, "aws:ec2/routeTable:RouteTable", f"route {route} needs exactly one target")


_ECR_NAME = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")


@rule("aws:ecr/repository:Repository")
def _ecr_repository(name: str, inputs: dict[str, Any]) -> None:
    repo = inputs.get("name")
    if repo is not None and (not 2 <= len(repo) <= 256 or not _ECR_NAME.match(repo)):
        raise reject(name, "aws:ecr/repository:Repository", f"repository name {repo!r} breaks ECR's naming rules")
    if inputs.get("imageTagMutability", "MUTABLE") not in ("MUTABLE", "IMMUTABLE", "MUTABLE_WITH_EXCLUSION",
                                                           "IMMUTABLE_WITH_EXCLUSION"):
        raise reject(name, "aws:ecr/repository:Repository", f"imageTagMutability {inputs.get('imageTagMutability')!r}")


@rule("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
def _oidc_provider(name: str, inputs: dict[str, Any]) -> None:
    t = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
    if not str(inputs.get("url") or "").startswith("https://"):
        raise reject(name, t, f"url {inputs.get('url')!r} is not https")
    if not inputs.get("clientIdLists"):
        raise reject(name, t, "clientIdLists is empty")


# --- The shop: security groups, endpoints, RDS, Secrets Manager, StatefulSets, Secrets ---------------------
_SECRET_SIG = "4dabf18193072939515e22adb298388d"  # pulumi.runtime.rpc's marker of a secret value


def _revealed(value: Any) -> Any:
    """A secret input as the provider sees it (the engine hands secrets to the mock wrapped)."""
    if isinstance(value, dict) and value.get(_SECRET_SIG) == "1b47061264138c4ac30d75fd1eb44270":
        return _revealed(value.get("value"))
    return value


# EC2's character set for security group and rule descriptions (no apostrophes, no quotes).
_SG_TEXT = re.compile(r"^[A-Za-z0-9 ._\-:/()#,@\[\]+=&;{}!$*]*$")
_SG_PROTOCOLS = {"tcp", "udp", "icmp", "icmpv6", "-1", "all", "6", "17", "1", "58"}


def _sg_rule(name: str, t: str, direction: str, item: dict[str, Any]) -> None:
    protocol = str(item.get("protocol") or "")
    if protocol not in _SG_PROTOCOLS:
        raise reject(name, t, f"{direction} protocol {protocol!r} is not one of {sorted(_SG_PROTOCOLS)}")
    lo, hi = _whole(item.get("fromPort")), _whole(item.get("toPort"))
    if protocol in ("-1", "all"):
        if (lo, hi) != (0, 0):
            raise reject(name, t, f"{direction} rule for all protocols needs fromPort = toPort = 0")
    elif protocol in ("tcp", "udp", "6", "17") and (lo is None or hi is None or not 0 <= lo <= hi <= 65535):
        raise reject(name, t, f"{direction} ports {lo}-{hi} are not a range within 0-65535")
    peers = ("cidrBlocks", "ipv6CidrBlocks", "prefixListIds", "securityGroups", "self")
    if not any(item.get(k) for k in peers):
        raise reject(name, t, f"{direction} rule {item} names no peer (cidrBlocks, prefixListIds, securityGroups, ...)")
    for cidr in item.get("cidrBlocks") or []:
        try:
            ipaddress.ip_network(str(cidr))
        except ValueError:
            raise reject(name, t, f"{direction} cidr {cidr!r} is not a network address") from None


@rule("aws:ec2/securityGroup:SecurityGroup")
def _security_group(name: str, inputs: dict[str, Any]) -> None:
    t = "aws:ec2/securityGroup:SecurityGroup"
    description = str(inputs.get("description") or "Managed by Pulumi")
    if len(description) > 255 or not _SG_TEXT.match(description):
        raise reject(name, t, f"description {description!r} has characters EC2 refuses (or is over 255)")
    for direction in ("ingress", "egress"):
        for item in inputs.get(direction) or []:
            _sg_rule(name, t, direction, item)
            rule_text = str(item.get("description") or "")
            if len(rule_text) > 255 or not _SG_TEXT.match(rule_text):
                raise reject(name, t, f"{direction} description {rule_text!r} has characters EC2 refuses")


@rule("aws:ec2/vpcEndpoint:VpcEndpoint")
def _vpc_endpoint(name: str, inputs: dict[str, Any]) -> None:
    t = "aws:ec2/vpcEndpoint:VpcEndpoint"
    kind = inputs.get("vpcEndpointType", "Gateway")
    service = str(inputs.get("serviceName") or "")
    if not re.match(r"^com\.amazonaws\.[a-z0-9-]+\.[a-z0-9.-]+$", service):
        raise reject(name, t, f"serviceName {service!r} is not com.amazonaws.<region>.<service>")
    if kind == "Gateway" and service.rsplit(".", 1)[-1] not in ("dynamodb", "s3"):
        raise reject(name, t, f"only DynamoDB and S3 have gateway endpoints, not {service}")
    if kind == "Gateway" and (inputs.get("subnetIds") or inputs.get("securityGroupIds")):
        raise reject(name, t, "a gateway endpoint takes route tables, not subnets or security groups")


@rule("aws:rds/subnetGroup:SubnetGroup")
def _rds_subnet_group(name: str, inputs: dict[str, Any]) -> None:
    if len(inputs.get("subnetIds") or []) < 2:
        raise reject(name, "aws:rds/subnetGroup:SubnetGroup", "a DB subnet group needs subnets in at least two zones")


_RDS_IDENTIFIER = re.compile(r"^[a-z](?!.*--)[a-z0-9-]{0,62}(?<!-)$")
_RDS_PASSWORD_FORBIDDEN = set('/@" ')


@rule("aws:rds/instance:Instance")
def _rds_instance(name: str, inputs: dict[str, Any]) -> None:
    t = "aws:rds/instance:Instance"
    ident = inputs.get("identifier")
    if ident is not None and not _RDS_IDENTIFIER.match(str(ident)):
        raise reject(name, t, f"identifier {ident!r} breaks RDS's naming rules")
    if not str(inputs.get("instanceClass") or "").startswith("db."):
        raise reject(name, t, f"instanceClass {inputs.get('instanceClass')!r} is not a DB instance class")
    engine = inputs.get("engine")
    if engine == "postgres":
        storage = _whole(inputs.get("allocatedStorage")) or 0
        if not 20 <= storage <= 65536:
            raise reject(name, t, f"allocatedStorage {storage} GB is outside 20-65536 for PostgreSQL")
        password = _revealed(inputs.get("password"))
        if password is not None and (not 8 <= len(password) <= 128 or set(password) & _RDS_PASSWORD_FORBIDDEN):
            raise reject(name, t, "the master password must be 8-128 printable characters without / @ \" or space")
        db_name = inputs.get("dbName")
        if db_name is not None and not re.match(r"^[A-Za-z][A-Za-z0-9_]{0,62}$", str(db_name)):
            raise reject(name, t, f"dbName {db_name!r} is not a PostgreSQL database name")
    if not inputs.get("skipFinalSnapshot") and not inputs.get("finalSnapshotIdentifier"):
        raise reject(name, t, "without skipFinalSnapshot a finalSnapshotIdentifier is required (or destroy fails)")
    if inputs.get("manageMasterUserPassword") and inputs.get("password"):
        raise reject(name, t, "password and manageMasterUserPassword are mutually exclusive")


@rule("aws:secretsmanager/secretVersion:SecretVersion")
def _secret_version(name: str, inputs: dict[str, Any]) -> None:
    given = [k for k in ("secretString", "secretBinary") if _revealed(inputs.get(k))]
    if len(given) != 1:
        raise reject(name, "aws:secretsmanager/secretVersion:SecretVersion",
                     "exactly one of secretString or secretBinary is required")


@rule("aws:secretsmanager/secret:Secret")
def _secret(name: str, inputs: dict[str, Any]) -> None:
    window = _whole(inputs.get("recoveryWindowInDays", 30))
    if window is None or not (window == 0 or 7 <= window <= 30):
        raise reject(name, "aws:secretsmanager/secret:Secret", f"recoveryWindowInDays {window} is not 0 or 7-30")


@rule("kubernetes:apps/v1:StatefulSet")
def _stateful_set(name: str, inputs: dict[str, Any]) -> None:
    t = "kubernetes:apps/v1:StatefulSet"
    spec = inputs.get("spec") or {}
    if not spec.get("serviceName"):
        raise reject(name, t, "spec.serviceName is required (the governing Service)")
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not selector or any(labels.get(k) != v for k, v in selector.items()):
        raise reject(name, t, f"selector {selector} does not match template labels {labels}")
    pod = template.get("spec") or {}
    if not pod.get("containers"):
        raise reject(name, t, "the pod template has no containers")
    volumes = {v.get("name") for v in pod.get("volumes") or []}
    volumes |= {(c.get("metadata") or {}).get("name") for c in spec.get("volumeClaimTemplates") or []}
    for container in pod["containers"]:
        _container(name, t, container)
        for mount in container.get("volumeMounts") or []:
            if mount.get("name") not in volumes:
                raise reject(name, t, f"container {container.get('name')} mounts unknown volume {mount.get('name')!r}")


@rule("kubernetes:core/v1:Secret")
def _k8s_secret(name: str, inputs: dict[str, Any]) -> None:
    t = "kubernetes:core/v1:Secret"
    for key, value in (_revealed(inputs.get("stringData")) or {}).items():
        value = _revealed(value)
        if not re.match(r"^[-._a-zA-Z0-9]+$", str(key)):
            raise reject(name, t, f"key {key!r} is not a valid Secret key")
        if not isinstance(value, str):
            raise reject(name, t, f"stringData.{key} must be a string, got {type(value).__name__}")


# --- [deploy-rehearsal block] EKS add-ons, StorageClasses, endpoint CIDRs, access principals, VPC functions -------
# Kept apart so it ports as one piece (these rules add to the ones above; `rule` allows several per type).
# Names EKS lists for `describe-addon-versions` that this project may install (the add-on name is immutable).
EKS_ADDONS = {"aws-ebs-csi-driver", "aws-efs-csi-driver", "vpc-cni", "coredns", "kube-proxy",
              "eks-pod-identity-agent", "aws-mountpoint-s3-csi-driver", "snapshot-controller"}
# The provider's own check of addon_version (semver with a leading v); EKS versions read v1.48.0-eksbuild.1.
_ADDON_VERSION = re.compile(r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$")
_IAM_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")


@rule("aws:eks/addon:Addon")
def _eks_addon(name: str, inputs: dict[str, Any]) -> None:
    t = "aws:eks/addon:Addon"
    if inputs.get("addonName") not in EKS_ADDONS:
        raise reject(name, t, f"addonName {inputs.get('addonName')!r} is not an EKS add-on ({sorted(EKS_ADDONS)})")
    version = inputs.get("addonVersion")
    if version is not None and not _ADDON_VERSION.match(str(version)):
        raise reject(name, t, f"addonVersion {version!r} is not an EKS add-on version like v1.48.0-eksbuild.1")
    role = inputs.get("serviceAccountRoleArn")
    if role is not None and not _IAM_ROLE_ARN.match(str(role)):
        raise reject(name, t, f"serviceAccountRoleArn {role!r} is not an IAM role ARN")
    if inputs.get("resolveConflictsOnCreate", "NONE") not in ("NONE", "OVERWRITE"):
        raise reject(name, t, f"resolveConflictsOnCreate {inputs.get('resolveConflictsOnCreate')!r}")
    if inputs.get("resolveConflictsOnUpdate", "NONE") not in ("NONE", "OVERWRITE", "PRESERVE"):
        raise reject(name, t, f"resolveConflictsOnUpdate {inputs.get('resolveConflictsOnUpdate')!r}")


# The EBS CSI driver's volume types and its boolean parameters' spelling (strings, as StorageClass parameters are).
EBS_VOLUME_TYPES = {"gp2", "gp3", "io1", "io2", "sc1", "st1", "standard"}


@rule("kubernetes:storage.k8s.io/v1:StorageClass")
def _storage_class(name: str, inputs: dict[str, Any]) -> None:
    t = "kubernetes:storage.k8s.io/v1:StorageClass"
    provisioner = str(inputs.get("provisioner") or "")
    if not provisioner:
        raise reject(name, t, "provisioner is required")
    if provisioner == "kubernetes.io/aws-ebs":
        raise reject(name, t, "the in-tree kubernetes.io/aws-ebs provisioner is gone (EKS 1.23+ provisions EBS "
                              "through ebs.csi.aws.com)")
    if inputs.get("volumeBindingMode", "Immediate") not in ("Immediate", "WaitForFirstConsumer"):
        raise reject(name, t, f"volumeBindingMode {inputs.get('volumeBindingMode')!r}")
    if inputs.get("reclaimPolicy", "Delete") not in ("Delete", "Retain"):
        raise reject(name, t, f"reclaimPolicy {inputs.get('reclaimPolicy')!r} is not Delete or Retain")
    parameters = inputs.get("parameters") or {}
    for key, value in parameters.items():
        if not isinstance(value, str):
            raise reject(name, t, f"parameters.{key} must be a string, got {type(value).__name__}")
    if provisioner == "ebs.csi.aws.com":
        if parameters.get("type", "gp3") not in EBS_VOLUME_TYPES:
            raise reject(name, t, f"parameters.type {parameters.get('type')!r} is not an EBS volume type")
        if parameters.get("encrypted", "false") not in ("true", "false"):
            raise reject(name, t, f"parameters.encrypted {parameters.get('encrypted')!r} is not \"true\" or \"false\"")


@rule("aws:eks/cluster:Cluster")
def _eks_public_access_cidrs(name: str, inputs: dict[str, Any]) -> None:
    t = "aws:eks/cluster:Cluster"
    vpc = inputs.get("vpcConfig") or {}
    cidrs = vpc.get("publicAccessCidrs")
    if cidrs is None:
        return
    if vpc.get("endpointPublicAccess") is False:
        raise reject(name, t, "publicAccessCidrs is set but endpointPublicAccess is false")
    if not cidrs:
        raise reject(name, t, "publicAccessCidrs is empty")
    for cidr in cidrs:
        try:
            ipaddress.IPv4Network(str(cidr), strict=True)
        except ValueError:
            raise reject(name, t, f"publicAccessCidrs entry {cidr!r} is not an IPv4 CIDR block") from None


@rule("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
def _eks_access_policy_principal(name: str, inputs: dict[str, Any]) -> None:
    principal = str(inputs.get("principalArn") or "")
    if not _IAM_PRINCIPAL.match(principal):
        raise reject(name, "aws:eks/accessPolicyAssociation:AccessPolicyAssociation",
                     f"principalArn {principal!r} must be an IAM role or user ARN (not an STS session)")


@rule("aws:lambda/function:Function")
def _lambda_destroy_time_groups(name: str, inputs: dict[str, Any]) -> None:
    t = "aws:lambda/function:Function"
    replacement = inputs.get("replacementSecurityGroupIds")
    if replacement and not inputs.get("replaceSecurityGroupsOnDestroy"):
        raise reject(name, t, "replacementSecurityGroupIds requires replaceSecurityGroupsOnDestroy")
    if inputs.get("replaceSecurityGroupsOnDestroy"):
        if not (inputs.get("vpcConfig") or {}).get("securityGroupIds"):
            raise reject(name, t, "replaceSecurityGroupsOnDestroy needs a vpcConfig with security groups")
        for group in replacement or []:
            if not str(group).startswith("sg-"):
                raise reject(name, t, f"replacementSecurityGroupIds entry {group!r} is not a security group id")

"""Typed, validated stack configuration: the only module that reads `pulumi.Config`.

`Pulumi.yaml` declares every key (type, default, description); this module adds what YAML cannot say
(ranges, allowed values, rules across keys) and turns the raw strings the engine hands the program into one
frozen `StackConfig`. A bad value fails the preview with a message that names the key, the value and what is
allowed, before any resource is registered.

`stack_config_values()` applies configuration exactly as the CLI does (Pulumi.yaml defaults, then
`Pulumi.<stack>.yaml`, then overrides) for whoever runs the program without the CLI, so no default is written twice.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from infra.limits import LOG_RETENTION_DAYS, is_graviton
from infra.prometheus import SCRAPE_INTERVAL_SECONDS
from mesh.durations import parse_duration
from mesh.tracing import otlp_target

PROJECT = "serverless-mesh"
PROJECT_DIR = Path(__file__).resolve().parent.parent

# The durations a setting may hold: one positive number with one unit (a subset of what Istio parses, so every
# accepted value reads the same in config and in the mesh; `mesh.durations` is the one parser).
_DURATION = re.compile(r"^\d+(?:\.\d+)?(?:ms|s|m|h)$")
# At most 115 characters: a built image is tagged `<tag>-<12 hex>` (infra/containers.py), within Docker's 128.
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,114}$")

SECRET_KEYS = frozenset({"jwtSigningKey", "dbPassword"})
SECRET_MIN_LENGTH = {"jwtSigningKey": 32, "dbPassword": 16}


class ConfigError(ValueError):
    """A stack setting that `pulumi up` must not proceed with; the message names the key."""


def duration_seconds(value: str) -> float:
    """Seconds in a setting's duration such as `500ms` or `2s`."""
    if not _DURATION.match(value):
        raise ValueError(f"not a duration: {value!r}")
    return parse_duration(value)


def _duration(value: str) -> str:
    if not _DURATION.match(value) or duration_seconds(value) <= 0:
        raise PydanticCustomError("duration", "a positive duration such as 500ms, 2s or 1m")
    return value


def _tag(value: str) -> str:
    if not _IMAGE_TAG.match(value):
        raise PydanticCustomError("tag", "an image tag of letters, digits, '.', '_' or '-' (at most 115)")
    return value


def _string_list(value: Any) -> Any:
    # The engine hands an `array` key to the program as its JSON text (`pulumi.Config.get`); defaults and the
    # test harness do the same, so the one accepted shape is a JSON list of strings.
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise PydanticCustomError("string_list", "a list of strings") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PydanticCustomError("string_list", "a list of strings")
    return [v.strip() for v in value]


def _public_cidrs(value: list[str]) -> tuple[str, ...]:
    # EKS's public endpoint sees callers by their public source address; nodes and the in-VPC Lambdas use the
    # private endpoint (endpoint_private_access), so a private, loopback or reserved block here admits nobody.
    if not value:
        raise PydanticCustomError("cidrs", "a non-empty list of public IPv4 CIDRs such as 0.0.0.0/0 or 1.2.3.0/24")
    for cidr in value:
        try:
            network = ipaddress.IPv4Network(cidr, strict=True)
        except ValueError:
            raise PydanticCustomError("cidrs", "a non-empty list of IPv4 CIDRs such as 0.0.0.0/0 or 1.2.3.0/24 "
                                      "(no host bits set)") from None
        if network.prefixlen and (network.is_private or network.is_loopback or network.is_multicast
                                  or network.is_reserved or network.is_link_local):
            raise PydanticCustomError("cidrs", "a non-empty list of public IPv4 CIDRs (the VPC reaches the API "
                                      "through the private endpoint)")
    return tuple(value)


# An access entry takes an IAM role or user ARN; an assumed-role session (`arn:aws:sts::...:assumed-role/...`)
# is refused by EKS, so the error says to name the role.
_IAM_PRINCIPAL_ARN = re.compile(r"^arn:aws(-[a-z]+)*:iam::\d{12}:(role|user)/[\w+=,.@/-]{1,512}$")


def _principal_arns(value: list[str]) -> tuple[str, ...]:
    for arn in value:
        if not _IAM_PRINCIPAL_ARN.match(arn):
            raise PydanticCustomError("principals", "a list of IAM role or user ARNs such as "
                                      "arn:aws:iam::123456789012:role/Admin (not STS assumed-role ARNs)")
    if len(set(value)) != len(value):
        raise PydanticCustomError("principals", "a list of distinct IAM role or user ARNs")
    return tuple(value)


def _otlp_endpoint(value: str) -> str:
    if value:
        try:
            otlp_target(value)
        except ValueError:
            raise PydanticCustomError("otlp", "empty (tracing off) or an OTLP/HTTP base URL such as "
                                      "http://otel-collector.observability:4318") from None
    return value


Duration = Annotated[str, AfterValidator(_duration)]
OtlpEndpoint = Annotated[str, AfterValidator(_otlp_endpoint)]
ImageTag = Annotated[str, AfterValidator(_tag)]
PublicCidrs = Annotated[tuple[str, ...], BeforeValidator(_string_list), AfterValidator(_public_cidrs)]
PrincipalArns = Annotated[tuple[str, ...], BeforeValidator(_string_list), AfterValidator(_principal_arns)]


class StackConfig(BaseModel):
    """Every project setting of one stack, validated. Field aliases are the config keys of Pulumi.yaml."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid", str_strip_whitespace=True)

    stack: str = "dev"
    region: str = Field("eu-west-1", alias="aws:region")
    aws_profile: str = Field("", alias="aws:profile")
    """The AWS CLI profile of the stack (`aws:profile`); the kubeconfig's `aws eks get-token` uses it too."""

    # Foundation and the TODO API
    canary_weight: int = Field(alias="canaryWeight", ge=0, le=100)
    # The rollout's analysis (mesh.analysis): what v2 must stay under before the weight may rise; `canaryAnalysis`
    # also enforces it inside `pulumi up` (infra.gate) against the Prometheus it installs (infra.monitoring).
    canary_analysis: bool = Field(alias="canaryAnalysis")
    canary_max_error_percent: float = Field(alias="canaryMaxErrorPercent", ge=0, le=100)
    canary_max_p99_ms: int = Field(alias="canaryMaxP99Ms", ge=1, le=3_600_000)
    canary_min_requests: int = Field(alias="canaryMinRequests", ge=1, le=1_000_000)
    canary_analysis_seconds: int = Field(alias="canaryAnalysisSeconds", ge=1, le=3600)
    app_v2_fault_percent: int = Field(alias="appV2FaultPercent", ge=0, le=100)
    log_retention_days: int = Field(alias="logRetentionDays")
    api_throttle_rate_limit: int = Field(alias="apiThrottleRateLimit", ge=1, le=10000)
    api_throttle_burst_limit: int = Field(alias="apiThrottleBurstLimit", ge=1, le=5000)
    protect_data: bool = Field(alias="protectData")
    lambda_memory_mb: int = Field(alias="lambdaMemoryMb", ge=128, le=10240)
    lambda_timeout_seconds: int = Field(alias="lambdaTimeoutSeconds", ge=1, le=29)

    # Image pipeline
    image_memory_mb: int = Field(alias="imageMemoryMb", ge=512, le=10240)
    image_timeout_seconds: int = Field(alias="imageTimeoutSeconds", ge=5, le=900)
    image_max_bytes: int = Field(alias="imageMaxBytes", ge=1024, le=5 * 1024**3)
    image_max_pixels: int = Field(alias="imageMaxPixels", ge=10_000, le=500_000_000)
    image_bucket_versioning: bool = Field(alias="imageBucketVersioning")
    image_max_retries: int = Field(alias="imageMaxRetries", ge=0, le=2)
    image_max_event_age_seconds: int = Field(alias="imageMaxEventAgeSeconds", ge=60, le=21600)

    # Platform, Istio and the canary
    kubeconfig: str = Field(alias="kubeconfig")
    cluster_version: str = Field(alias="clusterVersion", pattern=r"^1\.\d{2}$")
    node_instance_type: str = Field(alias="nodeInstanceType", pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
    node_architecture: Literal["arm64", "x86_64"] = Field(alias="nodeArchitecture")
    node_desired_size: int = Field(alias="nodeDesiredSize", ge=1, le=100)
    node_min_size: int = Field(alias="nodeMinSize", ge=1, le=100)
    node_max_size: int = Field(alias="nodeMaxSize", ge=1, le=100)
    cluster_endpoint_public_cidrs: PublicCidrs = Field(alias="clusterEndpointPublicCidrs")
    cluster_admin_arns: PrincipalArns = Field(alias="clusterAdminArns")
    storage_class_name: str = Field(alias="storageClassName", pattern=r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?)?$")
    istio_version: str = Field(alias="istioVersion", pattern=r"^1\.\d+\.\d+$")
    ingress_internal: bool = Field(alias="ingressInternal")
    image_registry: str = Field(alias="imageRegistry")
    app_v1_tag: ImageTag = Field(alias="appV1Tag")
    app_v2_tag: ImageTag = Field(alias="appV2Tag")
    v1_replicas: int = Field(alias="v1Replicas", ge=0, le=20)
    v2_replicas: int = Field(alias="v2Replicas", ge=1, le=20)
    retire_stable: bool = Field(alias="retireStable")
    confirm_stable_drained: bool = Field(alias="confirmStableDrained")
    mesh_retry_attempts: int = Field(alias="meshRetryAttempts", ge=0, le=10)
    mesh_per_try_timeout: Duration = Field(alias="meshPerTryTimeout")
    mesh_timeout: Duration = Field(alias="meshTimeout")

    # The hybrid shop
    services_tag: ImageTag = Field(alias="servicesTag")
    database_mode: Literal["rds", "incluster"] = Field(alias="databaseMode")
    database_instance_class: str = Field(alias="databaseInstanceClass", pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")
    token_ttl_seconds: int = Field(alias="tokenTtlSeconds", ge=60, le=86400)
    service_token_ttl_seconds: int = Field(alias="serviceTokenTtlSeconds", ge=60, le=3600)
    authorizer_cache_seconds: int = Field(alias="authorizerCacheSeconds", ge=0, le=3600)
    orders_reserved_concurrency: int = Field(alias="ordersReservedConcurrency", ge=-1, le=1000)
    inventory_max_connections: int = Field(alias="inventoryMaxConnections", ge=1, le=100000)
    inventory_max_pending_requests: int = Field(alias="inventoryMaxPendingRequests", ge=1, le=100000)
    inventory_max_requests_per_connection: int = Field(alias="inventoryMaxRequestsPerConnection", ge=0, le=100000)
    inventory_consecutive_5xx_errors: int = Field(alias="inventoryConsecutive5xxErrors", ge=1, le=1000)
    inventory_ejection_interval: Duration = Field(alias="inventoryEjectionInterval")
    inventory_base_ejection_time: Duration = Field(alias="inventoryBaseEjectionTime")
    inventory_max_ejection_percent: int = Field(alias="inventoryMaxEjectionPercent", ge=0, le=100)

    # Observability
    otlp_endpoint: OtlpEndpoint = Field(alias="otlpEndpoint")
    """Where the functions, the services and Istio export traces (OTLP/HTTP base URL); empty: tracing off."""

    @property
    def stable_weight(self) -> int:
        return 100 - self.canary_weight

    @property
    def creates_cluster(self) -> bool:
        return not self.kubeconfig


_ALLOWED_BY_TYPE = {
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "int_type": "an integer",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
}


def _describe(key: str, err: dict[str, Any]) -> str:
    """What `key` allows, phrased for a person: 'an integer from 0 to 100', 'one of rds, incluster'."""
    field_name = next((n for n, f in StackConfig.model_fields.items() if f.alias == key), None)
    info = StackConfig.model_fields[field_name] if field_name else None
    lo = hi = None
    pattern = None
    for meta in info.metadata if info else []:
        lo = getattr(meta, "ge", lo)
        hi = getattr(meta, "le", hi)
        pattern = getattr(meta, "pattern", pattern)
    annotation = info.annotation if info else None
    if annotation is int and lo is not None and hi is not None:
        return f"an integer from {lo} to {hi}"
    if annotation is float and lo is not None and hi is not None:
        return f"a number from {lo:g} to {hi:g}"
    if err["type"] == "literal_error":
        return "one of " + ", ".join(str(a) for a in getattr(annotation, "__args__", ()))
    if err["type"] == "string_pattern_mismatch" and pattern:
        return f"a string matching {pattern}"
    if err["type"] in ("duration", "tag", "string_list", "cidrs", "principals", "otlp"):
        return str(err["msg"])
    return _ALLOWED_BY_TYPE.get(err["type"], str(err["msg"]))


def _fail(key: str, value: Any, allowed: str) -> ConfigError:
    shown = json.dumps(value) if isinstance(value, str) else json.dumps(str(value))
    return ConfigError(f"{PROJECT}:{key} must be {allowed}, got {shown}")


def _check_rules(cfg: StackConfig) -> None:
    """Rules across keys: each names every key involved."""
    if cfg.log_retention_days not in LOG_RETENTION_DAYS:
        raise _fail("logRetentionDays", cfg.log_retention_days,
                    "one of CloudWatch's retention periods " + ", ".join(map(str, LOG_RETENTION_DAYS)))
    if cfg.api_throttle_burst_limit < cfg.api_throttle_rate_limit:
        raise ConfigError(f"{PROJECT}:apiThrottleBurstLimit ({cfg.api_throttle_burst_limit}) must be at least "
                          f"{PROJECT}:apiThrottleRateLimit ({cfg.api_throttle_rate_limit})")
    if not cfg.node_min_size <= cfg.node_desired_size <= cfg.node_max_size:
        raise ConfigError(f"{PROJECT}:nodeDesiredSize ({cfg.node_desired_size}) must lie between {PROJECT}:nodeMinSize "
                          f"({cfg.node_min_size}) and {PROJECT}:nodeMaxSize ({cfg.node_max_size})")
    if cfg.node_architecture == "arm64" and not is_graviton(cfg.node_instance_type):
        raise ConfigError(f"{PROJECT}:nodeInstanceType ({cfg.node_instance_type!r}) is not a Graviton (arm64) type, "
                          f"but {PROJECT}:nodeArchitecture is arm64")
    _check_retirement(cfg)
    _check_analysis(cfg)
    if cfg.storage_class_name and cfg.creates_cluster:
        raise ConfigError(f"{PROJECT}:storageClassName names a StorageClass of an existing cluster, but "
                          f"{PROJECT}:kubeconfig is empty, so the stack creates its cluster and its gp3 StorageClass; "
                          "leave storageClassName empty")
    if cfg.v1_replicas == 0 and cfg.canary_weight != 100:
        raise ConfigError(f"{PROJECT}:v1Replicas must be at least 1 while {PROJECT}:canaryWeight is below 100 "
                          f"(got canaryWeight {cfg.canary_weight}); to remove v1 set canaryWeight 100 and retireStable")
    if cfg.app_v1_tag == cfg.app_v2_tag:
        raise ConfigError(f"{PROJECT}:appV1Tag and {PROJECT}:appV2Tag must differ (both {cfg.app_v1_tag!r})")
    if duration_seconds(cfg.mesh_timeout) < duration_seconds(cfg.mesh_per_try_timeout):
        raise ConfigError(f"{PROJECT}:meshTimeout ({cfg.mesh_timeout}) must be at least "
                          f"{PROJECT}:meshPerTryTimeout ({cfg.mesh_per_try_timeout})")
    if cfg.authorizer_cache_seconds > cfg.token_ttl_seconds:
        raise ConfigError(f"{PROJECT}:authorizerCacheSeconds ({cfg.authorizer_cache_seconds}) must not exceed "
                          f"{PROJECT}:tokenTtlSeconds ({cfg.token_ttl_seconds}): a revoked or expired token "
                          "would stay accepted from the cache")


def _check_retirement(cfg: StackConfig) -> None:
    """`retireStable` deletes the v1 Deployment; Envoy must already have stopped routing to it.

    Weight 100 and retirement in one `pulumi up` is unsafe: Pulumi applies the VirtualService and deletes the
    Deployment concurrently (they don't depend on each other in the delete direction), and istiod pushes the new
    routes to every sidecar and the ingress asynchronously, so requests still in flight to v1 fail. So v2 must
    have had all traffic in an earlier update. The program cannot prove that from the previous state: a
    `pulumi.StackReference` to the running stack reads the outputs of its last update, but on a stack that was
    never deployed the reference fails and cannot be caught (pulumi/pulumi#3540), a failed update may still have
    rewritten the outputs (pulumi/pulumi#14621, so an exported `canaryWeight: 100` doesn't prove the
    VirtualService got it), and neither the mocks nor the local twin have a backend to read. Instead the
    operator confirms it: `confirmStableDrained: true` alongside `retireStable`, and only alongside it, so every
    retirement (after a rollback too) is confirmed anew.
    """
    if cfg.retire_stable and cfg.canary_weight != 100:
        raise ConfigError(f"{PROJECT}:retireStable can only be true when {PROJECT}:canaryWeight is 100 "
                          f"(v1 still gets {cfg.stable_weight}% of the traffic)")
    if cfg.retire_stable and not cfg.confirm_stable_drained:
        raise ConfigError(f"{PROJECT}:retireStable needs {PROJECT}:confirmStableDrained true: run one `pulumi up` "
                          f"with {PROJECT}:canaryWeight 100 first (so no Envoy routes to v1 any more), then set "
                          "retireStable and confirmStableDrained together")
    if cfg.confirm_stable_drained and not cfg.retire_stable:
        raise ConfigError(f"{PROJECT}:confirmStableDrained is only set together with {PROJECT}:retireStable; "
                          "set it back to false (each retirement is confirmed anew)")


def _check_analysis(cfg: StackConfig) -> None:
    """Prometheus' `increase`/`rate` need two samples inside the range: a window shorter than two scrape intervals
    would always read as "not enough data", and the gate would refuse every raise above 0."""
    floor = 2 * SCRAPE_INTERVAL_SECONDS
    if cfg.canary_analysis and cfg.canary_analysis_seconds < floor:
        raise ConfigError(f"{PROJECT}:canaryAnalysisSeconds must be at least {floor} (two Prometheus scrape "
                          f"intervals of {SCRAPE_INTERVAL_SECONDS} s) while {PROJECT}:canaryAnalysis is true, got "
                          f"{cfg.canary_analysis_seconds}")


def parse_stack_config(raw: dict[str, Any], *, stack: str = "dev") -> StackConfig:
    """Validate raw values keyed by config key (project keys bare, `aws:region` namespaced)."""
    unknown = sorted(set(raw) - {f.alias for f in StackConfig.model_fields.values()} - SECRET_KEYS)
    if unknown:
        raise ConfigError(f"{PROJECT}:{unknown[0]} is not a setting of this project; "
                          "Pulumi.yaml lists the keys it declares")
    data = {k: v for k, v in raw.items() if k not in SECRET_KEYS and v is not None}
    try:
        cfg = StackConfig.model_validate({**data, "stack": stack})
    except ValidationError as exc:
        err = exc.errors()[0]
        key = str(err["loc"][0]) if err["loc"] else "?"
        if err["type"] == "missing":
            raise ConfigError(f"{PROJECT}:{key} is not set; Pulumi.yaml declares its default, so run through the "
                              "Pulumi CLI or infra.config.stack_config_values()") from None
        raise _fail(key, raw.get(key), _describe(key, dict(err))) from None
    _check_rules(cfg)
    return cfg


def check_secret(key: str, value: str) -> str:
    """Fail (inside an apply at deploy time) when a secret is too short; the message never shows the value."""
    if len(value) < SECRET_MIN_LENGTH[key]:
        raise ConfigError(f"{PROJECT}:{key} must be a secret of at least {SECRET_MIN_LENGTH[key]} characters")
    return value


# --- Applying configuration like the CLI does -------------------------------------------------------------

@dataclass(frozen=True)
class ConfigValues:
    """What the engine hands a program: namespaced key -> string value, and which keys are secret."""

    values: dict[str, str]
    secret_keys: frozenset[str] = field(default_factory=frozenset)

    def project_raw(self) -> dict[str, Any]:
        """Bare project keys plus `aws:region` and `aws:profile`, as `parse_stack_config` takes them."""
        raw: dict[str, Any] = {}
        for key, value in self.values.items():
            namespace, _, name = key.partition(":")
            if namespace == PROJECT:
                raw[name] = value
            elif key in ("aws:region", "aws:profile"):
                raw[key] = value
        return raw


@cache
def project_schema(project_dir: Path = PROJECT_DIR) -> dict[str, dict[str, Any]]:
    """The `config:` block of Pulumi.yaml: key -> {type, default, description, secret}."""
    with open(project_dir / "Pulumi.yaml", encoding="utf-8") as fh:
        return dict((yaml.safe_load(fh) or {}).get("config") or {})


def _as_engine_string(value: Any) -> str:
    # The engine hands every value to the program as a string; structured values as JSON.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def stack_config_values(
    stack: str = "dev",
    overrides: dict[str, Any] | None = None,
    *,
    project_dir: Path = PROJECT_DIR,
    secrets: dict[str, str] | None = None,
) -> ConfigValues:
    """Pulumi.yaml defaults, then Pulumi.<stack>.yaml, then `overrides` (bare project keys or namespaced keys).

    Encrypted (`secure:`) stack values cannot be read without the stack's secrets provider; callers pass
    plaintext stand-ins in `secrets`, and a secret still missing stays unset, as with
    the CLI, so `config.require_secret` reports it.
    """
    def qualify(key: str) -> str:
        return key if ":" in key else f"{PROJECT}:{key}"

    values: dict[str, str] = {}
    secret_keys = {qualify(k) for k, spec in project_schema(project_dir).items() if spec.get("secret")}
    for key, spec in project_schema(project_dir).items():
        if "default" in spec:
            values[qualify(key)] = _as_engine_string(spec["default"])
    stack_file = project_dir / f"Pulumi.{stack}.yaml"
    if not stack_file.exists():
        raise ConfigError(f"no stack file {stack_file.name} in {project_dir}")
    with open(stack_file, encoding="utf-8") as fh:
        stack_doc = yaml.safe_load(fh) or {}
    for key, value in (stack_doc.get("config") or {}).items():
        if isinstance(value, dict) and "secure" in value:
            secret_keys.add(qualify(key))
            continue
        values[qualify(key)] = _as_engine_string(value)
    for key, value in (secrets or {}).items():
        secret_keys.add(qualify(key))
        values[qualify(key)] = value
    for key, value in (overrides or {}).items():
        values[qualify(key)] = _as_engine_string(value)
    return ConfigValues(values=values, secret_keys=frozenset(secret_keys))


# --- Inside the Pulumi program ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Secrets:
    """The stack's secrets as Pulumi secret Outputs (never plain strings)."""

    jwt_signing_key: Any
    db_password: Any


def load() -> tuple[StackConfig, Secrets]:
    """Read and validate this stack's config from the engine. Raises ConfigError naming the key."""
    import pulumi  # imported here so the pure parts of this module serve tools that lack the SDK at hand

    project_cfg = pulumi.Config(PROJECT)
    raw: dict[str, Any] = {}
    for key, spec in project_schema().items():
        if spec.get("secret"):
            continue
        value = project_cfg.get(key)
        # The CLI applies Pulumi.yaml defaults before the program runs; keep the same result without it.
        raw[key] = value if value is not None else (
            _as_engine_string(spec["default"]) if "default" in spec else None)
    aws_cfg = pulumi.Config("aws")
    raw["aws:region"] = aws_cfg.get("region") or "eu-west-1"
    raw["aws:profile"] = aws_cfg.get("profile") or ""
    cfg = parse_stack_config(raw, stack=pulumi.get_stack())
    secrets = Secrets(
        jwt_signing_key=project_cfg.require_secret("jwtSigningKey").apply(lambda v: check_secret("jwtSigningKey", v)),
        db_password=project_cfg.require_secret("dbPassword").apply(lambda v: check_secret("dbPassword", v)),
    )
    return cfg, secrets

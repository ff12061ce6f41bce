"""The stack config as each component's arguments: the one way `__main__.py` wires config into components.

Every component's Args come from a `<component>_args(cfg, ...)` mapper here (config values, the platform's typed
facts, what other components made), so `__main__.py` stays a table of contents and no component reads
`StackConfig`. The mesh builders' settings (`canary_settings`, `shop_settings`) are the only places config values
enter `mesh/`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import pulumi

from infra.api import HttpApiArgs
from infra.canary import CanaryAnalysis, CanaryAppArgs
from infra.config import PROJECT, ConfigError, Secrets, StackConfig
from infra.containers import PLATFORMS, ContainerImage, ImageBuild, ServiceImages, ServiceImagesArgs, ecr_credentials
from infra.facts import ClusterFacts, PlatformFacts
from infra.images import ImagePipelineArgs
from infra.kube import image_ref
from infra.lambdas import LambdaFunction
from infra.platform import ClusterSpec, Platform, PlatformArgs
from infra.prometheus import PrometheusService
from infra.service_auth import ServiceAuthArgs
from infra.shop import ShopArgs
from infra.shop_functions import LambdaSettings, ShopFunctionsArgs
from infra.shop_services import DatabaseSettings, ShopServicesArgs
from infra.todos import TodosApiArgs
from mesh.analysis import AnalysisSettings
from mesh.canary import CanarySettings, RetrySettings
from mesh.gateway import IngressSettings
from mesh.service_auth import ServiceIdentity
from mesh.shop import CircuitBreakerSettings, ShopSettings

# --- The TODO API, the image pipeline and the REST API ------------------------------------------------------

def todos_args(cfg: StackConfig, *, layers: Sequence[pulumi.Input[str]] = ()) -> TodosApiArgs:
    return TodosApiArgs(
        memory_mb=cfg.lambda_memory_mb,
        timeout_seconds=cfg.lambda_timeout_seconds,
        log_retention_days=cfg.log_retention_days,
        protect_data=cfg.protect_data,
        layers=tuple(layers),
        otlp_endpoint=cfg.otlp_endpoint,
    )


def images_args(cfg: StackConfig, *, layers: Sequence[pulumi.Input[str]] = ()) -> ImagePipelineArgs:
    return ImagePipelineArgs(
        memory_mb=cfg.image_memory_mb,
        timeout_seconds=cfg.image_timeout_seconds,
        max_bytes=cfg.image_max_bytes,
        max_pixels=cfg.image_max_pixels,
        versioning=cfg.image_bucket_versioning,
        max_retries=cfg.image_max_retries,
        max_event_age_seconds=cfg.image_max_event_age_seconds,
        protect_data=cfg.protect_data,
        log_retention_days=cfg.log_retention_days,
        layers=tuple(layers),
        otlp_endpoint=cfg.otlp_endpoint,
    )


def api_args(cfg: StackConfig, spec: dict[str, Any], functions: Mapping[str, LambdaFunction],
             authorizer: LambdaFunction | None = None) -> HttpApiArgs:
    return HttpApiArgs(
        spec=spec,
        functions=functions,
        authorizer=authorizer,
        authorizer_cache_seconds=cfg.authorizer_cache_seconds,
        throttle_rate_limit=cfg.api_throttle_rate_limit,
        throttle_burst_limit=cfg.api_throttle_burst_limit,
    )


# --- The platform and its images ----------------------------------------------------------------------------

def platform_args(cfg: StackConfig) -> PlatformArgs:
    """The stack config as the platform's arguments."""
    return PlatformArgs(
        name_prefix=f"{PROJECT}-{cfg.stack}",
        cluster=ClusterSpec(
            version=cfg.cluster_version,
            instance_type=cfg.node_instance_type,
            architecture=cfg.node_architecture,
            desired_size=cfg.node_desired_size,
            min_size=cfg.node_min_size,
            max_size=cfg.node_max_size,
            log_retention_days=cfg.log_retention_days,
            public_access_cidrs=cfg.cluster_endpoint_public_cidrs,
            admin_arns=cfg.cluster_admin_arns,
        ),
        kubeconfig=cfg.kubeconfig,
        istio_version=cfg.istio_version,
        ingress_internal=cfg.ingress_internal,
        image_registry=cfg.image_registry,
        force_delete_images=not cfg.protect_data,
        aws_profile=cfg.aws_profile,
        storage_class_name=cfg.storage_class_name,
        protect_data=cfg.protect_data,
        prometheus=PrometheusService() if cfg.canary_analysis else None,
        otlp_endpoint=cfg.otlp_endpoint,
    )


def image_versions(cfg: StackConfig, services: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    """Child key -> (service, version): one image per version tag.

    myapp v1 and v2 are the same code (services/myapp) told apart by VERSION; each version tag still gets its own
    Image, so `appV1Tag`/`appV2Tag` each name a pushed tag (`<appV1Tag>-<hash>`), and changing one (a promotion)
    builds and rolls only that version. One Image with both tags would re-push the unchanged version's tag when the
    other changes, which an IMMUTABLE repository refuses once the rebuild's digest differs. Both are built from this
    checkout: a code change rolls both versions (the canary splits traffic between versions of config, not of code).
    The other services are tagged `servicesTag`.
    """
    versions = {"myapp-v1": ("myapp", cfg.app_v1_tag), "myapp-v2": ("myapp", cfg.app_v2_tag)}
    versions.update({svc: (svc, cfg.services_tag) for svc in services if svc != "myapp"})
    return versions


def deployment_images(name: str, cfg: StackConfig, platform: Platform) -> dict[str, ContainerImage]:
    """What each Deployment runs (keys of `image_versions`): built and pushed here, or prebuilt from
    `imageRegistry` (`<imageRegistry>/<service>:<tag>`, nothing built)."""
    versions = {key: (svc, version) for key, (svc, version) in image_versions(cfg, platform.facts.services).items()
                if svc in platform.facts.services}
    if cfg.image_registry or not versions:
        return {key: ContainerImage(ref=image_ref(platform.image_repository(svc), version))
                for key, (svc, version) in versions.items()}
    repositories = platform.repositories
    first = repositories[sorted(repositories)[0]]
    images = ServiceImages(name, ServiceImagesArgs(
        builds={key: ImageBuild(service=svc, repository=repositories[svc].repository_url, version=version)
                for key, (svc, version) in versions.items()},
        platform=PLATFORMS[cfg.node_architecture],
        # Every repository of the stack is in the account's one registry: one token serves them all.
        registry=ecr_credentials(first),
    ))
    return images.images


# --- The canary ---------------------------------------------------------------------------------------------

def canary_settings(cfg: StackConfig, ingress: IngressSettings) -> CanarySettings:
    """The stack config as the mesh builders' settings (the only place `canaryWeight` enters the mesh)."""
    return CanarySettings(
        canary_weight=cfg.canary_weight,
        retire_stable=cfg.retire_stable,
        retries=RetrySettings(attempts=cfg.mesh_retry_attempts, per_try_timeout=cfg.mesh_per_try_timeout),
        timeout=cfg.mesh_timeout,
        gateways=(ingress.ref,),
    )


def analysis_settings(cfg: StackConfig) -> AnalysisSettings:
    """The ceilings and the window of the canary analysis (the only place they enter `mesh.analysis`; the cloud gate,
    `python -m infra.rollout` and the twin's rollout all read them from here)."""
    return AnalysisSettings(max_error_percent=cfg.canary_max_error_percent, max_p99_ms=cfg.canary_max_p99_ms,
                            min_requests=cfg.canary_min_requests, window_seconds=cfg.canary_analysis_seconds)


def canary_analysis(cfg: StackConfig, cluster: ClusterFacts) -> CanaryAnalysis | None:
    """The gate's settings and Prometheus when `canaryAnalysis` is on (the platform installed it then)."""
    if not cfg.canary_analysis:
        return None
    if cluster.metrics is None:
        raise ConfigError(f"{PROJECT}:canaryAnalysis is true but the platform installed no Prometheus")
    return CanaryAnalysis(settings=analysis_settings(cfg), metrics=cluster.metrics)


def canary_args(cfg: StackConfig, cluster: ClusterFacts, images: Mapping[str, ContainerImage]) -> CanaryAppArgs:
    """myapp v1/v2 as the config and the platform say (the provider comes through `Platform.in_cluster()`)."""
    return CanaryAppArgs(
        settings=canary_settings(cfg, cluster.ingress),
        stable_image=images["myapp-v1"],
        canary_image=images["myapp-v2"],
        stable_tag=cfg.app_v1_tag,
        canary_tag=cfg.app_v2_tag,
        stable_replicas=cfg.v1_replicas,
        canary_replicas=cfg.v2_replicas,
        canary_fault_percent=cfg.app_v2_fault_percent,
        mesh_ready=cluster.mesh_ready,
        analysis=canary_analysis(cfg, cluster),
    )


# --- The shop -----------------------------------------------------------------------------------------------

def shop_settings(cfg: StackConfig, ingress: IngressSettings) -> ShopSettings:
    """The stack config as the mesh builders' settings (the only place the circuit-breaker values enter the mesh)."""
    breaker = CircuitBreakerSettings(
        max_connections=cfg.inventory_max_connections,
        http1_max_pending_requests=cfg.inventory_max_pending_requests,
        max_requests_per_connection=cfg.inventory_max_requests_per_connection,
        consecutive_5xx_errors=cfg.inventory_consecutive_5xx_errors,
        interval=cfg.inventory_ejection_interval,
        base_ejection_time=cfg.inventory_base_ejection_time,
        max_ejection_percent=cfg.inventory_max_ejection_percent,
    )
    defaults = ShopSettings()
    services = tuple(replace(s, circuit_breaker=breaker if s.circuit_breaker is not None else None)
                     for s in defaults.services)
    return ShopSettings(namespace=defaults.namespace, ingress=ingress, services=services)


def canary_hosts(cfg: StackConfig, ingress: IngressSettings) -> tuple[str, ...]:
    """The canary app's hosts on the shared gateway (its VirtualService owns them, so allowing them by name at the
    gateway opens nothing of the shop's)."""
    canary = canary_settings(cfg, ingress)
    return (canary.host, *canary.extra_hosts)


def check_shop_config(cfg: StackConfig) -> None:
    """What the shop needs from the platform: a VPC of our own for RDS and for reaching an internal ingress."""
    if cfg.kubeconfig and cfg.database_mode == "rds":
        raise ConfigError(f"{PROJECT}:databaseMode rds needs the VPC this stack creates, but {PROJECT}:kubeconfig "
                          "names an existing cluster; set databaseMode to incluster")
    if cfg.kubeconfig and cfg.ingress_internal:
        raise ConfigError(f"{PROJECT}:ingressInternal true needs the order functions inside the cluster's VPC, but "
                          f"{PROJECT}:kubeconfig names an existing cluster whose VPC this stack does not know; "
                          "set ingressInternal to false")


def shop_args(cfg: StackConfig, secrets: Secrets, platform: PlatformFacts, images: Mapping[str, ContainerImage], *,
              layers: Sequence[pulumi.Input[str]] = ()) -> ShopArgs:
    """The stack config and the platform's facts as the shop's arguments."""
    check_shop_config(cfg)
    network = platform.network
    settings = shop_settings(cfg, platform.cluster.ingress)
    return ShopArgs(
        functions=ShopFunctionsArgs(
            lambdas=LambdaSettings(memory_mb=cfg.lambda_memory_mb, timeout_seconds=cfg.lambda_timeout_seconds,
                                   log_retention_days=cfg.log_retention_days, layers=tuple(layers),
                                   otlp_endpoint=cfg.otlp_endpoint),
            token_ttl_seconds=cfg.token_ttl_seconds,
            jwt_signing_key=secrets.jwt_signing_key,
            ingress_hostname=platform.cluster.ingress_hostname,
            network=network,
            protect_data=cfg.protect_data,
            orders_reserved_concurrency=cfg.orders_reserved_concurrency,
        ),
        services=ShopServicesArgs(
            settings=settings,
            cluster=platform.cluster,
            images={svc.name: images[svc.name] for svc in settings.services},
            database=DatabaseSettings(mode=cfg.database_mode, password=secrets.db_password,
                                      instance_class=cfg.database_instance_class),
            network=network,
            protect_data=cfg.protect_data,
            otlp_endpoint=cfg.otlp_endpoint,
        ),
        service_auth=ServiceAuthArgs(identity=ServiceIdentity(), ttl_seconds=cfg.service_token_ttl_seconds,
                                     network=network, protect_data=cfg.protect_data),
        other_hosts=canary_hosts(cfg, platform.cluster.ingress),
    )

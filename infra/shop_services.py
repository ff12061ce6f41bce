"""`ShopServices`: the shop's Kubernetes side. The `shop` namespace, the database (`infra.database`), a role per
service and the Job that bootstraps them (`infra.db_bootstrap`), the services' Deployments and Services, and the
Istio resources `mesh.shop` builds (routes, retries, the inventory circuit breaker, who may call whom). The
Kubernetes provider comes through `opts.providers` (see `infra.kube.k8s_opts`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s

from infra.containers import ContainerImage
from infra.database import (
    DB_USER,
    SECRET_PASSWORD_KEY,
    SECRET_USER_KEY,
    Database,
    DatabaseArgs,
    InCluster,
    secret_env,
)
from infra.db_bootstrap import CREDENTIALS_ANNOTATION, DatabaseAddress, DatabaseRoles, DatabaseRolesArgs
from infra.facts import ClusterFacts, PrivateNetwork
from infra.kube import ISTIO_INJECTION, deployment_spec, k8s_opts, service_container
from infra.service_auth import EdgeAuth, edge_resources
from mesh.common import Manifest, deployment_name
from mesh.shop import SHOP_VERSION, ShopService, ShopSettings, shop_manifests
from services.common.dbroles import BOOTSTRAP_NAME, SERVICE_ROLES

SERVICE_REPLICAS = 2


def service_environment(service: ShopService, db: Database, *, log_level: str,
                        otlp_endpoint: str = "") -> dict[str, pulumi.Input[str]]:
    """The plain (non-secret) variables of `services/<name>/settings.py`; credentials come from the Secret.
    With `otlp_endpoint`, also where `services.common.tracing` exports spans."""
    tracing = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint} if otlp_endpoint else {}
    return {
        **tracing,
        "HOST": "0.0.0.0",  # inside the pod: the sidecar is the only way in
        "PORT": str(service.target_port),
        "DATABASE_HOST": db.host,
        "DATABASE_PORT": str(db.port),
        "DATABASE_NAME": db.name,
        "LOG_LEVEL": log_level,
    }



@dataclass(frozen=True, kw_only=True)
class DatabaseSettings:
    mode: Literal["rds", "incluster"]
    password: pulumi.Input[str]
    instance_class: str = "db.t4g.micro"


@dataclass(frozen=True, kw_only=True)
class ShopServicesArgs:
    settings: ShopSettings
    cluster: ClusterFacts
    images: Mapping[str, ContainerImage]
    """Service name -> what its Deployment runs (the pushed image by digest, or a prebuilt one)."""
    database: DatabaseSettings
    network: PrivateNetwork | None = None
    protect_data: bool = False
    log_level: str = "INFO"
    edge: EdgeAuth | None = None
    """The gateway's service-token checks (set by `Shop` from its `ServiceAuth`)."""
    otlp_endpoint: str = ""
    """Where the services export spans (the stack's `otlpEndpoint`; empty: tracing off)."""



class ShopServices(pulumi.ComponentResource):
    """The `shop` namespace: database, credentials, the three services and their Istio resources (the Kubernetes
    provider comes through `opts.providers`)."""

    namespace: pulumi.Output[str]
    database_host: pulumi.Output[str]

    def __init__(self, name: str, args: ShopServicesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-mesh:shop:ShopServices", name, None, opts)
        self.args = args
        settings, cluster = args.settings, args.cluster
        self.ns = k8s.core.v1.Namespace(
            f"{name}-ns", metadata={"name": settings.namespace, "labels": dict(ISTIO_INJECTION)},
            # The sidecar injector must exist before the first pod of an injected namespace.
            opts=k8s_opts(self, cluster.mesh_ready))
        self.credentials = self._create_credentials(name)
        self.service_accounts = self._create_service_accounts(name)
        self.database = self._create_database(name)
        self.roles = self._create_roles(name)
        self.deployments = self._create_deployments(name)
        self.services = self._create_services(name)
        self.mesh = self._create_mesh(name)
        self.namespace = self.ns.metadata.name
        self.database_host = self.database.host
        self.register_outputs({"namespace": self.namespace, "database_host": self.database_host})

    @property
    def credentials_name(self) -> str:
        return f"{self.args.settings.namespace}-db"

    def _opts(self, depends_on: Sequence[pulumi.Resource] = ()) -> pulumi.ResourceOptions:
        return k8s_opts(self, [self.ns, *depends_on])

    def _create_credentials(self, name: str) -> k8s.core.v1.Secret:
        # The master's: read only by the bootstrap Job (and the in-cluster server's pod), never by a service.
        # The password reaches pods only through this Secret (a secret Output, so encrypted in the state too).
        return k8s.core.v1.Secret(
            f"{name}-db-credentials",
            metadata={"name": self.credentials_name, "namespace": self.args.settings.namespace},
            type="Opaque",
            string_data={SECRET_USER_KEY: DB_USER,
                         SECRET_PASSWORD_KEY: pulumi.Output.secret(self.args.database.password)},
            opts=self._opts(),
        )

    def _create_service_accounts(self, name: str) -> dict[str, k8s.core.v1.ServiceAccount]:
        # One identity per service: AuthorizationPolicies tell callers apart by it.
        return {
            svc.name: k8s.core.v1.ServiceAccount(
                f"{name}-{svc.name}-sa",
                metadata={"name": svc.service_account, "namespace": self.args.settings.namespace,
                          "labels": {"app": svc.name}},
                automount_service_account_token=False,
                opts=self._opts(),
            )
            for svc in self.args.settings.services
        }

    def _create_database(self, name: str) -> Database:
        args = self.args
        cluster = InCluster(
            namespace=args.settings.namespace,
            credentials_secret=self.credentials_name,
            clients=(*(svc.service_account for svc in args.settings.services), BOOTSTRAP_NAME),
            trust_domain=args.settings.ingress.trust_domain,
            depends_on=(self.ns, self.credentials, *args.cluster.mesh_ready),
            storage_class=args.cluster.storage_class,
            storage_ready=args.cluster.storage_ready,
        ) if args.database.mode == "incluster" else None
        return Database(f"{name}-db", DatabaseArgs(
            mode=args.database.mode,
            password=args.database.password,
            protect_data=args.protect_data,
            instance_class=args.database.instance_class,
            network=args.network,
            cluster=cluster,
        ), pulumi.ResourceOptions(parent=self))

    def _create_roles(self, name: str) -> DatabaseRoles:
        args = self.args
        services = tuple(svc.name for svc in args.settings.services if svc.name in SERVICE_ROLES)
        return DatabaseRoles(f"{name}-db-roles", DatabaseRolesArgs(
            namespace=args.settings.namespace,
            services=services,
            database=DatabaseAddress(host=self.database.host, port=self.database.port, name=self.database.name),
            master_secret=self.credentials_name,
            # Any service image carries the bootstrap (services/common); the first service's is pushed anyway.
            image=args.images[services[0]],
            depends_on=(self.ns, self.credentials, *self.database.ready, *args.cluster.mesh_ready),
            log_level=args.log_level,
        ), pulumi.ResourceOptions(parent=self))

    def _container(self, svc: ShopService) -> dict[str, Any]:
        args = self.args
        container = service_container(
            name=svc.name,
            image=args.images[svc.name].ref,
            env=service_environment(svc, self.database, log_level=args.log_level, otlp_endpoint=args.otlp_endpoint),
            port=svc.target_port,
        )
        # Its own role's Secret, never the master's.
        secret = self.roles.secret_name(svc.name)
        container["env"] = sorted([
            *container["env"],
            secret_env("DATABASE_USER", secret, SECRET_USER_KEY),
            secret_env("DATABASE_PASSWORD", secret, SECRET_PASSWORD_KEY),
        ], key=lambda item: item["name"])
        return container

    def _create_deployments(self, name: str) -> dict[str, k8s.apps.v1.Deployment]:
        settings = self.args.settings
        deployments = {}
        for svc in settings.services:
            labels = svc.labels
            spec = deployment_spec(labels=labels, replicas=SERVICE_REPLICAS, container=self._container(svc),
                                   service_account=svc.service_account)
            # A rotated password changes the template, so the pods restart onto it (after the Job set it).
            spec["template"]["metadata"]["annotations"][CREDENTIALS_ANNOTATION] = self.roles.checksum(svc.name)
            deployments[svc.name] = k8s.apps.v1.Deployment(
                f"{name}-{svc.name}",
                metadata={"name": deployment_name(svc.name, SHOP_VERSION), "namespace": settings.namespace,
                          "labels": labels},
                spec=spec,
                # After the bootstrap Job completed (the provider awaits it): before, the role has no grants and the
                # pod would stay unready until the rollout timed out. The Job itself waits for the database.
                # Its image pushed first (a pod created earlier would sit in ImagePullBackOff).
                opts=self._opts([self.service_accounts[svc.name], self.roles.secrets[svc.name], self.roles.job,
                                 *self.database.ready, *self.args.cluster.mesh_ready,
                                 *self.args.images[svc.name].depends_on]),
            )
        return deployments

    def _create_services(self, name: str) -> dict[str, k8s.core.v1.Service]:
        settings = self.args.settings
        return {
            svc.name: k8s.core.v1.Service(
                f"{name}-{svc.name}-service",
                metadata={"name": svc.name, "namespace": settings.namespace, "labels": {"app": svc.name}},
                spec={
                    "type": "ClusterIP",
                    "selector": svc.selector,
                    # `http` tells Istio to route HTTP (retries, outlier detection), not opaque TCP.
                    "ports": [{"name": "http", "port": svc.port, "targetPort": svc.target_port, "protocol": "TCP",
                               "appProtocol": "http"}],
                },
                opts=self._opts(),
            )
            for svc in settings.services
        }

    def _create_mesh(self, name: str) -> dict[str, k8s.apiextensions.CustomResource]:
        args = self.args
        # The Gateway is the platform's (one per ingress); the VirtualService binds to it by `<namespace>/<name>`.
        manifests = shop_manifests(args.settings, include_gateway=False)
        created: dict[str, k8s.apiextensions.CustomResource] = {}
        for manifest in manifests:
            depends: list[pulumi.Resource] = [*args.cluster.mesh_ready]  # the CRDs (istio-base) and istiod's webhook
            if manifest["kind"] == "VirtualService":
                # Routes last: destinations (and their mTLS/circuit-breaker policy) exist before traffic moves.
                depends += [*(r for k, r in created.items() if k.startswith("DestinationRule/")),
                            *self.services.values()]
                if args.cluster.gateway is not None:
                    depends.append(args.cluster.gateway)
            created[f"{manifest['kind']}/{manifest['metadata']['name']}"] = self._custom_resource(
                name, manifest, depends)
        if args.edge is not None:
            edge_resources(name, args.settings, args.edge, self._opts(args.cluster.mesh_ready))
        return created

    def _custom_resource(self, name: str, manifest: Manifest,
                         depends_on: Sequence[pulumi.Resource]) -> k8s.apiextensions.CustomResource:
        kind = manifest["kind"].lower()
        return k8s.apiextensions.CustomResource(
            f"{name}-{kind}-{manifest['metadata']['name']}", api_version=manifest["apiVersion"],
            kind=manifest["kind"], metadata=manifest["metadata"], spec=manifest["spec"],
            opts=self._opts(depends_on))

"""`CanaryApp`: myapp v1 (stable) and v2 (canary) behind one Service, split by Istio as `canaryWeight` says.

Every Istio spec, label and selector comes from `mesh.canary` (the local twin feeds the same builders to Envoy);
this module only wraps them in Kubernetes resources. The seed's rollout is one config change per step:
`canaryWeight` 0 -> 10 -> 50 -> 100, then `retireStable: true` removes the v1 Deployment (it is not registered,
so `pulumi up` deletes it; the DestinationRule keeps the `v1` subset and the split route keeps v1 at weight 0, so
the Istio resources don't change shape). Rollback from there is `retireStable: false` (v1 comes back with
`v1Replicas` pods, and the VirtualService waits for its rollout before any weight moves) and then a lower
`canaryWeight`. `v1Replicas: 0` at weight 100 scales v1 to zero instead, keeping the Deployment object.

With `canaryAnalysis` on, a `CanaryGate` (infra.gate) stands before the VirtualService: an update that raises the
weight is judged against v2's metrics first, and fails, leaving the VirtualService as it was, when v2 is unhealthy.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.containers import ContainerImage
from infra.facts import MetricsFacts
from infra.gate import CanaryGate, CanaryGateArgs
from infra.kube import ISTIO_INJECTION, deployment_spec, k8s_opts, service_container
from mesh.analysis import AnalysisSettings, canary_target
from mesh.canary import CanarySettings, destination_rule, peer_authentication, virtual_service
from mesh.common import Manifest


def canary_fault_env(settings: CanarySettings, version: str, fault_percent: int) -> dict[str, str]:
    """myapp's `FAULT_PERCENT`, set on the canary's Deployment only (and only when on), so v1 never fails."""
    if version != settings.canary_version or not fault_percent:
        return {}
    return {"FAULT_PERCENT": str(fault_percent)}


@dataclass(frozen=True, kw_only=True)
class CanaryAnalysis:
    """What the gate judges by (`canaryMaxErrorPercent` ...) and where it reads v2's metrics."""

    settings: AnalysisSettings
    metrics: MetricsFacts


@dataclass(frozen=True, kw_only=True)
class CanaryAppArgs:
    settings: CanarySettings
    stable_image: ContainerImage
    """What v1 runs: its pushed image by digest (or a prebuilt `<imageRegistry>/myapp:<tag>`)."""
    canary_image: ContainerImage
    stable_tag: str
    """v1's VERSION (`appV1Tag`); the image's tag starts with it."""
    canary_tag: str
    stable_replicas: int = 3
    canary_replicas: int = 1
    mesh_ready: tuple[pulumi.Resource, ...] = ()
    """Istio's releases: custom resources need their CRDs, meshed pods the sidecar injector."""
    log_level: str = "INFO"
    canary_fault_percent: int = 0
    """Percent of the canary's requests that answer 500 (`appV2FaultPercent`): a bad release, rehearsed."""
    analysis: CanaryAnalysis | None = None
    """Gate the weight inside `pulumi up` (`canaryAnalysis`); None: the weight moves as configured."""


class CanaryApp(pulumi.ComponentResource):
    """myapp's versions, Service and Istio resources; the Kubernetes provider comes through `opts.providers`."""

    namespace: pulumi.Output[str]
    service_name: pulumi.Output[str]

    def __init__(self, name: str, args: CanaryAppArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-mesh:canary:CanaryApp", name, None, opts)
        self.args = args
        settings = args.settings
        self.ns = k8s.core.v1.Namespace(
            f"{name}-ns", metadata={"name": settings.namespace, "labels": dict(ISTIO_INJECTION)},
            opts=k8s_opts(self, args.mesh_ready))
        self.service_account = k8s.core.v1.ServiceAccount(
            f"{name}-sa", metadata={"name": settings.app, "namespace": settings.namespace},
            automount_service_account_token=False, opts=k8s_opts(self, [self.ns]))
        self.peer_authentication = self._custom_resource(f"{name}-mtls", peer_authentication(settings.namespace))
        self.deployments = self._create_deployments(name)
        self.service = self._create_service(name)
        self.destination_rule = self._custom_resource(f"{name}-dr", destination_rule(settings))
        routes = virtual_service(settings)
        self.gate = self._create_gate(name, routes["metadata"]["name"])
        # Subsets before routes (make-before-break), on a rollback the v1 pods ready before weight moves to them, and
        # a raise judged by the gate first: when it fails the update, the engine leaves the VirtualService as it was.
        self.virtual_service = self._custom_resource(
            f"{name}-vs", routes,
            [self.destination_rule, *self.deployments.values(), *([self.gate] if self.gate else [])])
        self.namespace = self.ns.metadata.name
        self.service_name = self.service.metadata.name
        self.register_outputs({"namespace": self.namespace, "service_name": self.service_name})

    def _create_gate(self, name: str, virtual_service_name: str) -> CanaryGate | None:
        analysis = self.args.analysis
        if analysis is None:
            return None
        settings = self.args.settings
        gate_args = CanaryGateArgs(weight=settings.canary_weight, settings=analysis.settings,
                                   target=canary_target(settings), virtual_service=virtual_service_name,
                                   service=analysis.metrics.service,
                                   kubeconfig=analysis.metrics.kubeconfig)
        # After Prometheus is up (its first query must not race the install); no Kubernetes provider: it talks to
        # the API server itself, with the kubeconfig it is given.
        return CanaryGate(f"{name}-gate", gate_args,
                          pulumi.ResourceOptions(parent=self, depends_on=list(analysis.metrics.ready)))

    def _custom_resource(self, resource_name: str, manifest: Manifest,
                         depends_on: list[pulumi.Resource] | None = None) -> k8s.apiextensions.CustomResource:
        # depends_on the Istio releases: the CRDs exist before the first `up` creates these (see infra.istio.Istio).
        return k8s.apiextensions.CustomResource(
            resource_name, api_version=manifest["apiVersion"], kind=manifest["kind"],
            metadata=manifest["metadata"], spec=manifest["spec"],
            opts=k8s_opts(self, [*self.args.mesh_ready, self.ns, *(depends_on or [])]))

    def _create_deployments(self, name: str) -> dict[str, k8s.apps.v1.Deployment]:
        args, settings = self.args, self.args.settings
        versions = {
            settings.stable_version: (args.stable_tag, args.stable_image, args.stable_replicas),
            settings.canary_version: (args.canary_tag, args.canary_image, args.canary_replicas),
        }
        deployments = {}
        for version, (tag, image, replicas) in versions.items():
            if not settings.replicas_enabled(version):
                continue  # retired: not registered, so `pulumi up` deletes it
            labels = settings.deployment_labels(version)
            container = service_container(
                name=settings.app,
                image=image.ref,
                env={"VERSION": tag, "HOST": "0.0.0.0", "PORT": str(settings.target_port),
                     "LOG_LEVEL": args.log_level, **canary_fault_env(settings, version, args.canary_fault_percent)},
                port=settings.target_port,
            )
            deployments[version] = k8s.apps.v1.Deployment(
                f"{name}-{version}",
                metadata={"name": settings.deployment_name(version), "namespace": settings.namespace,
                          "labels": labels},
                spec=deployment_spec(labels=labels, replicas=replicas, container=container,
                                     service_account=settings.app),
                # After its image is pushed: a pod created earlier would sit in ImagePullBackOff.
                opts=k8s_opts(self, [self.ns, self.service_account, *image.depends_on]),
            )
        return deployments

    def _create_service(self, name: str) -> k8s.core.v1.Service:
        settings = self.args.settings
        return k8s.core.v1.Service(
            f"{name}-service",
            metadata={"name": settings.service_name, "namespace": settings.namespace,
                      "labels": {"app": settings.app}},
            spec={
                "type": "ClusterIP",
                # `app` only: both versions stay behind this Service; the DestinationRule's subsets tell them apart.
                "selector": settings.service_selector(),
                # Istio picks the protocol from the port name (`http`), so it routes HTTP, not opaque TCP.
                "ports": [{"name": "http", "port": settings.service_port, "targetPort": settings.target_port,
                           "protocol": "TCP", "appProtocol": "http"}],
            },
            opts=k8s_opts(self, [self.ns]),
        )

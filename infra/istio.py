"""`Istio`: the mesh from its official Helm charts (base -> istiod -> gateway) and the shared ingress Gateway.
The charts' values and the gateway release's name are pure helpers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_kubernetes as k8s

from infra.kube import k8s_opts
from infra.network import subnet_plan
from infra.node_access import source_ranges
from mesh.gateway import IngressSettings, gateway
from mesh.tracing import extension_provider, mesh_telemetry

if TYPE_CHECKING:  # the Args the platform hands its children (infra.platform imports this module)
    from infra.platform import PlatformArgs

ISTIO_CHARTS = "https://istio-release.storage.googleapis.com/charts"
ISTIO_NAMESPACE = "istio-system"
ISTIO_BASE_RELEASE = "istio-base"
ISTIOD_RELEASE = "istiod"


def gateway_release_name(ingress: IngressSettings) -> str:
    """The gateway chart derives its pod labels (`istio: <name without istio->`) and service account from the
    release name; name the release so both are what the Gateway resource and AuthorizationPolicies expect."""
    name = ingress.service_account
    if ingress.selector.get("istio") != name.removeprefix("istio-"):
        raise ValueError(f"ingress selector {ingress.selector} does not match the gateway release name {name!r}")
    return name


def gateway_service_annotations(internal: bool) -> dict[str, str]:
    """An NLB (internal when the shop's Lambdas reach the mesh from inside the VPC)."""
    annotations = {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"}
    if internal:
        # The first is what EKS's built-in cloud controller reads; the second what the AWS Load Balancer
        # Controller reads if it is installed later, so the gateway never becomes internet-facing by accident.
        annotations["service.beta.kubernetes.io/aws-load-balancer-internal"] = "true"
        annotations["service.beta.kubernetes.io/aws-load-balancer-scheme"] = "internal"
    else:
        annotations["service.beta.kubernetes.io/aws-load-balancer-scheme"] = "internet-facing"
    return annotations


def istiod_values(otlp_endpoint: str = "") -> dict[str, Any]:
    # `resources` sits at the chart's top level: the istiod chart's deployment template reads `.Values.resources`
    # (manifests/charts/istio-control/istio-discovery, 1.28 and 1.30 alike); a `pilot.resources` key is ignored and
    # istiod would request the chart default of 500m / 2 GiB.
    mesh_config: dict[str, Any] = {"accessLogFile": "/dev/stdout", "accessLogEncoding": "JSON"}
    if otlp_endpoint:
        # A provider is only a name until a Telemetry resource selects it (`Istio._create_telemetry`).
        mesh_config["extensionProviders"] = [extension_provider(otlp_endpoint)]
    return {"meshConfig": mesh_config, "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}}}


def gateway_values(ingress: IngressSettings, internal: bool, private_cidrs: Sequence[str] = ()) -> dict[str, Any]:
    return {
        "service": {"type": "LoadBalancer", "annotations": gateway_service_annotations(internal),
                    "loadBalancerSourceRanges": source_ranges(private_cidrs, internal)},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
    }


def private_cidrs(args: PlatformArgs) -> list[str]:
    """The private subnets' CIDRs of the VPC this stack creates (none for an existing cluster's VPC)."""
    if args.kubeconfig:
        return []
    return [plan.cidr for plan in subnet_plan(args.cluster.vpc_cidr, zones=2) if plan.tier == "private"]


def load_balancer_hostname(status: Any) -> str:
    """The first load-balancer hostname in a Service's status ("" until AWS has provisioned it)."""
    ingress = (status.load_balancer.ingress if status and status.load_balancer else None) or []
    return str(ingress[0].hostname or "") if ingress else ""


class Istio(pulumi.ComponentResource):
    """Istio from its official Helm charts (base -> istiod -> gateway) and the shared ingress Gateway.

    CRDs and custom resources in one `pulumi up`: the `base` chart installs Istio's CRDs. Each chart is a
    `helm.v3.Release`, one resource that Pulumi awaits until Helm reports it deployed (its resources ready;
    `skip_await` stays false), so `depends_on=[release]` orders a custom resource after the CRDs exist. Custom
    resources are plain `apiextensions.CustomResource`s, not a helm `Chart`/`ConfigGroup`: those resolve kinds
    client-side during preview and fail with "failed to determine if the following GVK is namespaced" while the
    CRDs are missing (pulumi/pulumi-kubernetes#3176), whereas the provider previews a single CustomResource of an
    unknown kind by assuming it is namespaced (pulumi/pulumi-kubernetes#554). They also wait for istiod, whose
    validating webhook checks them and whose injector must exist before any meshed pod is created.
    """

    ingress_hostname: pulumi.Output[str]

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-mesh:platform:Istio", name, None, opts)
        self.ingress = args.ingress
        system_ns = k8s.core.v1.Namespace(f"{name}-system-ns", metadata={"name": ISTIO_NAMESPACE},
                                          opts=k8s_opts(self))
        ingress_ns = k8s.core.v1.Namespace(f"{name}-ingress-ns", metadata={"name": args.ingress.namespace},
                                           opts=k8s_opts(self))
        self.base = self._release(f"{name}-base", ISTIO_BASE_RELEASE, "base", ISTIO_NAMESPACE, args.istio_version,
                                  {"defaultRevision": "default"}, [system_ns])
        self.istiod = self._release(f"{name}-istiod", ISTIOD_RELEASE, "istiod", ISTIO_NAMESPACE, args.istio_version,
                                    istiod_values(args.otlp_endpoint), [self.base])
        self.gateway_release = self._release(
            f"{name}-gateway", gateway_release_name(args.ingress), "gateway", args.ingress.namespace,
            args.istio_version, gateway_values(args.ingress, args.ingress_internal, private_cidrs(args)),
            [self.istiod, ingress_ns])
        #: What every Istio custom resource and every meshed workload must wait for (see the class docstring).
        self.ready: list[pulumi.Resource] = [self.base, self.istiod]
        manifest = gateway(args.ingress)
        self.gateway = k8s.apiextensions.CustomResource(
            f"{name}-gateway-cr", api_version=manifest["apiVersion"], kind=manifest["kind"],
            metadata=manifest["metadata"], spec=manifest["spec"],
            opts=k8s_opts(self, [*self.ready, ingress_ns]))
        # The chart creates the gateway Service; reading it back (the Release docs' pattern) gives the NLB's name.
        service = k8s.core.v1.Service.get(
            f"{name}-gateway-service",
            pulumi.Output.concat(self.gateway_release.status.namespace, "/", self.gateway_release.status.name),
            opts=k8s_opts(self, [self.gateway_release]))
        self.ingress_hostname = service.status.apply(load_balancer_hostname)
        self.telemetry = self._create_telemetry(name) if args.otlp_endpoint else None
        self.register_outputs({"ingress_hostname": self.ingress_hostname})

    def _create_telemetry(self, name: str) -> k8s.apiextensions.CustomResource:
        """The mesh-wide Telemetry turning the OpenTelemetry provider on for every proxy (the gateway included)."""
        manifest = mesh_telemetry(ISTIO_NAMESPACE)
        return k8s.apiextensions.CustomResource(
            f"{name}-telemetry", api_version=manifest["apiVersion"], kind=manifest["kind"],
            metadata=manifest["metadata"], spec=manifest["spec"], opts=k8s_opts(self, self.ready))

    def _release(self, resource_name: str, release: str, chart: str, namespace: str, version: str,
                 values: dict[str, Any], depends_on: list[pulumi.Resource]) -> k8s.helm.v3.Release:
        return k8s.helm.v3.Release(
            resource_name,
            name=release,
            chart=chart,
            version=version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=ISTIO_CHARTS),
            namespace=namespace,
            values=values,
            skip_await=False,
            atomic=True,
            cleanup_on_fail=True,
            timeout=600,
            opts=k8s_opts(self, depends_on),
        )

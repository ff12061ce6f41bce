"""What the platform tells the components built on it, as typed, frozen values.

`Platform` exposes one `PlatformFacts`; the canary, the shop and the image builds take it (or the part they need)
instead of reaching into the platform's children. The Kubernetes provider is not a fact: it travels through
`ResourceOptions(providers=[...])` and every child inherits it (`infra.kube.k8s_opts` insists on it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi

from infra.prometheus import PrometheusService
from mesh.gateway import IngressSettings


@dataclass(frozen=True, kw_only=True)
class PrivateNetwork:
    """The platform's VPC, as the shop's AWS resources need it."""

    vpc_id: pulumi.Input[str]
    cidr: str
    private_subnet_ids: Sequence[pulumi.Input[str]]
    private_route_table_ids: Sequence[pulumi.Input[str]]
    node_security_group_id: pulumi.Input[str]
    """The security group of the cluster's nodes (and so of its pods, under the VPC CNI)."""
    default_security_group_id: pulumi.Input[str] | None = None
    """The VPC's default group: where a VPC function's ENIs are moved before the function is deleted."""


@dataclass(frozen=True, kw_only=True)
class MetricsFacts:
    """The in-cluster Prometheus (`canaryAnalysis`), as the canary gate queries it."""

    service: PrometheusService
    ready: tuple[pulumi.Resource, ...]
    """Its Helm release: a query must wait for a running server."""
    kubeconfig: pulumi.Input[str]
    """The stack's kubeconfig (a secret): the gate reaches Prometheus through the API server's service proxy."""


@dataclass(frozen=True, kw_only=True)
class ClusterFacts:
    """What a workload in the cluster waits for and names."""

    ingress: IngressSettings
    """The shared ingress gateway's settings (namespace, selector, the Gateway's `<namespace>/<name>`)."""
    ingress_hostname: pulumi.Input[str]
    """The ingress gateway Service's load-balancer hostname ("" until AWS has provisioned it)."""
    mesh_ready: tuple[pulumi.Resource, ...] = ()
    """Istio's releases: custom resources need their CRDs, meshed pods the sidecar injector."""
    gateway: pulumi.Resource | None = None
    """The shared ingress Gateway a VirtualService binds to."""
    storage_class: str | None = None
    """The StorageClass a volume claim names (None: the cluster's default class)."""
    storage_ready: tuple[pulumi.Resource, ...] = ()
    """The CSI driver and StorageClass a volume claim needs (a cluster this stack creates)."""
    metrics: MetricsFacts | None = None
    """The Prometheus the canary gate reads; None when `canaryAnalysis` is off."""


@dataclass(frozen=True, kw_only=True)
class PlatformFacts:
    """The cluster, its VPC when this stack created it, and which services have an image repository."""

    cluster: ClusterFacts
    network: PrivateNetwork | None = None
    """None when the cluster is an existing one from `kubeconfig` (its VPC is not this stack's)."""
    services: tuple[str, ...] = field(default_factory=tuple)
    """Services with an image repository (every `services/<name>/Dockerfile`)."""

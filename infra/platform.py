"""`Platform`: where the mesh runs. A VPC (`infra.network`) and an EKS cluster (`infra.eks`), or an existing
cluster from `kubeconfig`; the one Kubernetes provider everything in the cluster is created with; Istio from its
Helm charts (`infra.istio`); Prometheus for the canary gate when `canaryAnalysis` is on (`infra.monitoring`);
block storage (`infra.storage`); and ECR repositories. What other components need from
it is `facts` (typed values) and `provider` (for their `opts`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.containers import service_images
from infra.eks import EksCluster
from infra.facts import ClusterFacts, MetricsFacts, PlatformFacts, PrivateNetwork
from infra.istio import Istio
from infra.monitoring import Monitoring, MonitoringArgs
from infra.network import Network
from infra.prometheus import PrometheusService
from infra.storage import BlockStorage, BlockStorageArgs
from mesh.gateway import IngressSettings


def ecr_repository_name(prefix: str, service: str) -> str:
    """`<project>-<stack>/<service>`: the image's last path segment is the service name (the twin relies on it)."""
    return f"{prefix}/{service}"


# --- Args -------------------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class ClusterSpec:
    """The EKS cluster and its managed node group."""

    version: str
    instance_type: str
    architecture: str
    desired_size: int
    min_size: int
    max_size: int
    log_retention_days: int = 7
    vpc_cidr: str = "10.0.0.0/16"
    public_access_cidrs: tuple[str, ...] = ("0.0.0.0/0",)
    """Who may reach the API's public endpoint (`clusterEndpointPublicCidrs`); the VPC uses the private one."""
    admin_arns: tuple[str, ...] = ()
    """IAM principals given cluster-admin access entries (`clusterAdminArns`); empty: whoever runs `pulumi up`."""


@dataclass(frozen=True, kw_only=True)
class PlatformArgs:
    name_prefix: str
    """`<project>-<stack>`: the cluster's name and the ECR repositories' prefix (physical names must be known
    before creation: subnet tags name the cluster)."""
    cluster: ClusterSpec
    kubeconfig: str = ""
    """An existing cluster's kubeconfig; set, no VPC or cluster is created."""
    istio_version: str
    ingress_internal: bool = True
    ingress: IngressSettings = field(default_factory=IngressSettings)
    image_registry: str = ""
    """A registry prefix for images; empty creates ECR repositories and uses them."""
    images: tuple[str, ...] = field(default_factory=service_images)
    force_delete_images: bool = False
    """Let `pulumi destroy` delete repositories that still hold images (dev)."""
    aws_profile: str = ""
    """The stack's `aws:profile`: the kubeconfig's `aws eks get-token` runs with it."""
    storage_class_name: str = ""
    """An existing cluster's StorageClass for volume claims (`storageClassName`); empty: its default class."""
    protect_data: bool = False
    """Keep volumes when their claims are deleted."""
    prometheus: PrometheusService | None = None
    """Install Prometheus there for the canary gate (`canaryAnalysis`); None installs none."""
    otlp_endpoint: str = ""
    """Where Istio's proxies export traces (the stack's `otlpEndpoint`; empty: no tracing provider)."""


class Platform(pulumi.ComponentResource):
    """The cluster (created, or an existing one), its provider, Istio, and the service image repositories.

    What other components need from it is `facts` (typed values) and `provider` (for their `opts`); its children
    stay its own.
    """

    kubeconfig: pulumi.Output[str]
    ingress_hostname: pulumi.Output[str]
    ecr_repository_urls: pulumi.Output[dict[str, str]]

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-mesh:platform:Platform", name, None, opts)
        self._args = args
        self._network: Network | None = None
        self._cluster: EksCluster | None = None
        if args.kubeconfig:
            self.kubeconfig = pulumi.Output.secret(args.kubeconfig)
        else:
            self._network = Network(f"{name}-network", args, pulumi.ResourceOptions(parent=self))
            self._cluster = EksCluster(f"{name}-eks", args, self._network, pulumi.ResourceOptions(parent=self))
            self.kubeconfig = self._cluster.kubeconfig
        self.provider = self._create_provider(name)
        in_cluster = pulumi.ResourceOptions.merge(self.in_cluster(), pulumi.ResourceOptions(parent=self))
        self._storage = self._create_storage(name, args, in_cluster)
        self._istio = Istio(f"{name}-istio", args, in_cluster)
        self._monitoring = self._create_monitoring(name, args, in_cluster)
        self.repositories = self._create_repositories(name, args)
        self.ingress_hostname = self._istio.ingress_hostname
        self.ecr_repository_urls = pulumi.Output.all(
            **{svc: repo.repository_url for svc, repo in self.repositories.items()})
        self.facts = PlatformFacts(cluster=self._cluster_facts(), network=self._private_network(),
                                   services=tuple(args.images))
        self.register_outputs({"kubeconfig": self.kubeconfig, "ingress_hostname": self.ingress_hostname,
                               "ecr_repository_urls": self.ecr_repository_urls})

    @property
    def cluster_name(self) -> pulumi.Output[str] | None:
        return self._cluster.cluster_name if self._cluster else None

    def in_cluster(self) -> pulumi.ResourceOptions:
        """Options for a component whose children live in the cluster: this platform's Kubernetes provider, which
        every child (`parent=self`) inherits."""
        return pulumi.ResourceOptions(providers=[self.provider])

    def _cluster_facts(self) -> ClusterFacts:
        # The StorageClass claims name: the stack's gp3 class, an existing cluster's configured one, or None for
        # that cluster's default class.
        storage_class = (self._storage.storage_class_name if self._storage is not None
                         else self._args.storage_class_name or None)
        return ClusterFacts(
            ingress=self._args.ingress,
            ingress_hostname=self.ingress_hostname,
            mesh_ready=tuple(self._istio.ready),
            gateway=self._istio.gateway,
            storage_class=storage_class,
            storage_ready=tuple(self._storage.ready) if self._storage is not None else (),
            metrics=self._metrics_facts(),
        )

    def _metrics_facts(self) -> MetricsFacts | None:
        if self._monitoring is None or self._args.prometheus is None:
            return None
        return MetricsFacts(service=self._args.prometheus, ready=self._monitoring.ready, kubeconfig=self.kubeconfig)

    def _create_monitoring(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions) -> Monitoring | None:
        # Cluster-wide like Istio (it scrapes every proxy), so the platform's; after Istio, whose proxies it scrapes.
        if args.prometheus is None:
            return None
        return Monitoring(f"{name}-monitoring", MonitoringArgs(service=args.prometheus, mesh_ready=self._istio.ready),
                          opts)

    def _private_network(self) -> PrivateNetwork | None:
        """The VPC as in-VPC resources need it (None when the cluster is an existing one from `kubeconfig`)."""
        if self._network is None or self._cluster is None:
            return None
        network = self._network
        return PrivateNetwork(
            vpc_id=network.vpc_id,
            cidr=network.vpc_cidr,
            private_subnet_ids=tuple(network.private_subnet_ids),
            private_route_table_ids=tuple(network.private_route_table_ids),
            node_security_group_id=self._cluster.cluster_security_group_id,
            default_security_group_id=network.default_security_group_id,
        )

    def _create_provider(self, name: str) -> k8s.Provider:
        # The only Kubernetes provider: every Kubernetes resource names it, so no ambient kubeconfig is ever used.
        # Nodes (the first Helm release waits for pods) and every admin's policy (its first API call needs it).
        depends = [self._cluster.node_group, *self._cluster.admin_policies] if self._cluster else []
        return k8s.Provider(f"{name}-k8s", kubeconfig=self.kubeconfig, enable_server_side_apply=True,
                            opts=pulumi.ResourceOptions(parent=self, depends_on=depends))

    def _create_storage(self, name: str, args: PlatformArgs,
                        opts: pulumi.ResourceOptions) -> BlockStorage | None:
        # Only on a cluster this stack creates; an existing cluster's storage is its owner's (storageClassName).
        if self._cluster is None:
            return None
        return BlockStorage(f"{name}-storage", BlockStorageArgs(
            cluster_name=self._cluster.cluster_name,
            kubernetes_version=args.cluster.version,
            oidc_provider_arn=self._cluster.oidc_provider_arn,
            oidc_issuer=self._cluster.oidc_issuer,
            nodes=self._cluster.node_group,
            protect_data=args.protect_data,
        ), opts)

    def _create_repositories(self, name: str, args: PlatformArgs) -> dict[str, aws.ecr.Repository]:
        if args.image_registry:
            return {}
        return {
            svc: aws.ecr.Repository(
                f"{name}-ecr-{svc}",
                name=ecr_repository_name(args.name_prefix, svc),
                image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
                # A tag is a version (VERSION of the canary): it must never point at other bytes.
                image_tag_mutability="IMMUTABLE",
                force_delete=args.force_delete_images,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for svc in args.images
        }

    def image_repository(self, service: str) -> pulumi.Input[str]:
        """Where `service`'s images live: `<imageRegistry>/<service>` or this stack's ECR repository."""
        if service not in self._args.images:
            raise KeyError(f"no image repository for {service!r}; services with a Dockerfile: {self._args.images}")
        if self._args.image_registry:
            return f"{self._args.image_registry.rstrip('/')}/{service}"
        return self.repositories[service].repository_url

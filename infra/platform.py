"""`Platform`: where the mesh runs. A VPC and an EKS cluster (or an existing cluster from `kubeconfig`), the one
Kubernetes provider everything in the cluster is created with, Istio from its Helm charts, and ECR repositories.

Built from pulumi-aws resources rather than the pulumi-eks component so every piece is a resource of its own, with
its inputs in the program's graph (a remote component's children are opaque to it). Pure helpers (subnet plan,
AMI type, kubeconfig document, Helm values, repository names) sit at module level and need no Pulumi engine.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.config import PROJECT, PROJECT_DIR, StackConfig
from infra.kube import k8s_opts
from infra.node_access import node_launch_template, source_ranges
from infra.storage import BlockStorage, BlockStorageArgs
from mesh.gateway import IngressSettings, gateway

ISTIO_CHARTS = "https://istio-release.storage.googleapis.com/charts"
ISTIO_NAMESPACE = "istio-system"
ISTIO_BASE_RELEASE = "istio-base"
ISTIOD_RELEASE = "istiod"

# AWS managed policies: the documented requirement of the EKS service role and of managed node groups.
CLUSTER_POLICIES = {"cluster": "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"}
NODE_POLICIES = {
    "worker": "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "cni": "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "ecr": "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
}
CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
CLUSTER_LOG_TYPES = ("api", "audit", "authenticator")


def service_images(services_dir: Any = PROJECT_DIR / "services") -> tuple[str, ...]:
    """Every service with a Dockerfile gets an image repository (the Dockerfiles are the one list)."""
    return tuple(sorted(p.parent.name for p in services_dir.glob("*/Dockerfile")))


# --- Pure helpers -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SubnetPlan:
    tier: str  # "public" or "private"
    zone_index: int
    cidr: str


def subnet_plan(vpc_cidr: str, zones: int = 2) -> list[SubnetPlan]:
    """Large private subnets (the VPC CNI gives every pod a VPC address) and small public ones for load balancers.

    The first half of the VPC is split between the zones' private subnets; the first quarter of the second half
    between their public subnets (for a /16 over two zones: private /18s, public /20s). The rest stays free.
    """
    network = ipaddress.IPv4Network(vpc_cidr)
    bits = max(1, (zones - 1).bit_length())
    first_half, second_half = network.subnets(prefixlen_diff=1)
    public_block = next(second_half.subnets(prefixlen_diff=1))
    private = list(first_half.subnets(prefixlen_diff=bits))[:zones]
    public = list(public_block.subnets(prefixlen_diff=bits + 1))[:zones]
    return [SubnetPlan("private", i, str(c)) for i, c in enumerate(private)] + [
        SubnetPlan("public", i, str(c)) for i, c in enumerate(public)
    ]


def subnet_tags(tier: str, cluster_name: str, name: str) -> dict[str, str]:
    """Tags the AWS cloud controller reads to place load balancers: internet-facing in public, internal in private."""
    role = "kubernetes.io/role/elb" if tier == "public" else "kubernetes.io/role/internal-elb"
    return {"Name": name, role: "1", f"kubernetes.io/cluster/{cluster_name}": "shared"}


def ami_type(architecture: str) -> str:
    """The EKS-optimised Amazon Linux 2023 AMI for the node architecture."""
    return {"arm64": "AL2023_ARM_64_STANDARD", "x86_64": "AL2023_x86_64_STANDARD"}[architecture]


def assume_role_policy(service: str) -> str:
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    })


def kubeconfig_document(cluster_name: str, endpoint: str, ca_data: str, region: str, profile: str = "") -> str:
    """A kubeconfig (JSON is valid YAML) whose user runs `aws eks get-token`: no long-lived credential in it.

    With the stack's `aws:profile` the token is minted from that profile (as `aws eks update-kubeconfig --profile`
    writes it), so the Kubernetes provider authenticates as the same identity the AWS provider deploys with.
    """
    exec_config: dict[str, object] = {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": "aws",
        "args": ["eks", "get-token", "--cluster-name", cluster_name, "--region", region, "--output", "json"],
        "interactiveMode": "Never",
    }
    if profile:
        exec_config["env"] = [{"name": "AWS_PROFILE", "value": profile}]
    return json.dumps({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
        "current-context": cluster_name,
        "users": [{"name": cluster_name, "user": {"exec": exec_config}}],
    })


def admin_resource_suffix(principal_arn: str) -> str:
    """A stable, readable resource-name part for an admin principal: account, kind and name from the ARN, plus a
    short hash of the whole ARN (names are lowercased and de-punctuated, so two ARNs could otherwise meet).
    Derived from the ARN rather than its position, so reordering `clusterAdminArns` replaces nothing."""
    account, resource = principal_arn.split(":", 5)[4:6]
    slug = re.sub(r"[^a-z0-9]+", "-", resource.lower()).strip("-")
    return f"{account}-{slug}-{hashlib.sha256(principal_arn.encode()).hexdigest()[:6]}"


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


def istiod_values() -> dict[str, Any]:
    # `resources` sits at the chart's top level: the istiod chart's deployment template reads `.Values.resources`
    # (manifests/charts/istio-control/istio-discovery, 1.28 and 1.30 alike); a `pilot.resources` key is ignored and
    # istiod would request the chart default of 500m / 2 GiB.
    return {
        "meshConfig": {"accessLogFile": "/dev/stdout", "accessLogEncoding": "JSON"},
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
    }


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
    )


# --- Components -------------------------------------------------------------------------------------------

class Network(pulumi.ComponentResource):
    """A VPC over two zones: public subnets (IGW, the NAT, load balancers), private subnets (nodes, pods)."""

    vpc_id: pulumi.Output[str]
    private_subnet_ids: list[pulumi.Output[str]]
    public_subnet_ids: list[pulumi.Output[str]]

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-mesh:platform:Network", name, None, opts)
        cluster_name = args.name_prefix
        self.vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=args.cluster.vpc_cidr, enable_dns_hostnames=True,
                               enable_dns_support=True, tags={"Name": f"{cluster_name}-vpc"},
                               opts=pulumi.ResourceOptions(parent=self))
        self.igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=self.vpc.id, tags={"Name": f"{cluster_name}-igw"},
                                           opts=pulumi.ResourceOptions(parent=self))
        self.subnets = self._create_subnets(name, args)
        self.nat = self._create_nat(name, cluster_name)
        self._create_routes(name, cluster_name)
        self.vpc_id = self.vpc.id
        self.vpc_cidr = args.cluster.vpc_cidr
        self.default_security_group_id = self.vpc.default_security_group_id
        self.private_subnet_ids = [s.id for s in self.subnets["private"]]
        self.public_subnet_ids = [s.id for s in self.subnets["public"]]
        self.private_route_table_ids = self.route_table_ids["private"]
        self.register_outputs({"vpc_id": self.vpc_id, "private_subnet_ids": self.private_subnet_ids,
                               "public_subnet_ids": self.public_subnet_ids})

    def _create_subnets(self, name: str, args: PlatformArgs) -> dict[str, list[aws.ec2.Subnet]]:
        zones = aws.get_availability_zones_output(state="available")
        subnets: dict[str, list[aws.ec2.Subnet]] = {"public": [], "private": []}
        for plan in subnet_plan(args.cluster.vpc_cidr, zones=2):
            subnet_name = f"{name}-{plan.tier}-{plan.zone_index}"
            subnets[plan.tier].append(aws.ec2.Subnet(
                subnet_name,
                vpc_id=self.vpc.id,
                cidr_block=plan.cidr,
                availability_zone=zones.names.apply(lambda names, i=plan.zone_index: names[i]),
                map_public_ip_on_launch=plan.tier == "public",
                tags=subnet_tags(plan.tier, args.name_prefix, f"{args.name_prefix}-{plan.tier}-{plan.zone_index}"),
                opts=pulumi.ResourceOptions(parent=self),
            ))
        return subnets

    def _create_nat(self, name: str, cluster_name: str) -> aws.ec2.NatGateway:
        # One NAT (not one per zone): dev cost over zone-failure tolerance of egress; nodes reach ECR/STS through it.
        eip = aws.ec2.Eip(f"{name}-nat-ip", domain="vpc", tags={"Name": f"{cluster_name}-nat"},
                          opts=pulumi.ResourceOptions(parent=self, depends_on=[self.igw]))
        return aws.ec2.NatGateway(f"{name}-nat", allocation_id=eip.id, subnet_id=self.subnets["public"][0].id,
                                  tags={"Name": f"{cluster_name}-nat"},
                                  opts=pulumi.ResourceOptions(parent=self, depends_on=[self.igw]))

    def _create_routes(self, name: str, cluster_name: str) -> None:
        targets = {"public": {"gateway_id": self.igw.id}, "private": {"nat_gateway_id": self.nat.id}}
        #: Route table ids per tier (the shop's DynamoDB gateway endpoint attaches to the private ones).
        self.route_table_ids: dict[str, list[pulumi.Output[str]]] = {}
        for tier, target in targets.items():
            table = aws.ec2.RouteTable(
                f"{name}-{tier}-rt", vpc_id=self.vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", **target)],
                tags={"Name": f"{cluster_name}-{tier}"}, opts=pulumi.ResourceOptions(parent=self))
            self.route_table_ids[tier] = [table.id]
            for i, subnet in enumerate(self.subnets[tier]):
                aws.ec2.RouteTableAssociation(f"{name}-{tier}-rta-{i}", subnet_id=subnet.id, route_table_id=table.id,
                                              opts=pulumi.ResourceOptions(parent=self))


class EksCluster(pulumi.ComponentResource):
    """EKS with API-mode access entries, a managed node group and the cluster's IAM OIDC provider."""

    cluster_name: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]
    cluster_security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: PlatformArgs, network: Network,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-mesh:platform:EksCluster", name, None, opts)
        self.cluster = self._create_cluster(name, args, network)
        #: The cluster-admin policy associations the Kubernetes provider's identity needs before its first call.
        self.admin_policies = self._create_admin_access(name, args.cluster.admin_arns)
        self.node_group = self._create_node_group(name, args, network)
        self.oidc_issuer = self.cluster.identities.apply(lambda ids: ids[0].oidcs[0].issuer)  # type: ignore[index,union-attr]
        self.oidc_provider = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc", url=self.oidc_issuer, client_id_lists=["sts.amazonaws.com"],
            tags={"Name": f"{args.name_prefix}-oidc"}, opts=pulumi.ResourceOptions(parent=self))
        self.cluster_name = self.cluster.name
        self.oidc_provider_arn = self.oidc_provider.arn
        self.cluster_security_group_id = self.cluster.vpc_config.cluster_security_group_id
        region = aws.get_region_output().region
        self.kubeconfig = pulumi.Output.secret(pulumi.Output.all(
            self.cluster.name, self.cluster.endpoint, self.cluster.certificate_authority.data, region,
        ).apply(lambda a: kubeconfig_document(a[0], a[1], a[2], a[3], profile=args.aws_profile)))
        self.register_outputs({"cluster_name": self.cluster_name, "oidc_provider_arn": self.oidc_provider_arn,
                               "kubeconfig": self.kubeconfig})

    def _role(self, name: str, service: str, policies: dict[str, str]) -> tuple[aws.iam.Role, list[pulumi.Resource]]:
        role = aws.iam.Role(name, assume_role_policy=assume_role_policy(service),
                            opts=pulumi.ResourceOptions(parent=self))
        attachments: list[pulumi.Resource] = [
            aws.iam.RolePolicyAttachment(f"{name}-{key}", role=role.name, policy_arn=arn,
                                         opts=pulumi.ResourceOptions(parent=self))
            for key, arn in policies.items()
        ]
        return role, attachments

    def _create_cluster(self, name: str, args: PlatformArgs, network: Network) -> aws.eks.Cluster:
        role, attachments = self._role(f"{name}-cluster-role", "eks.amazonaws.com", CLUSTER_POLICIES)
        # EKS creates this log group itself with no retention and leaves it behind on destroy; owning it first
        # gives it a retention and lets `pulumi destroy` remove it.
        logs = aws.cloudwatch.LogGroup(f"{name}-logs", name=f"/aws/eks/{args.name_prefix}/cluster",
                                       retention_in_days=args.cluster.log_retention_days,
                                       opts=pulumi.ResourceOptions(parent=self))
        return aws.eks.Cluster(
            f"{name}-cluster",
            name=args.name_prefix,
            version=args.cluster.version,
            role_arn=role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=[*network.private_subnet_ids, *network.public_subnet_ids],
                # Nodes (and the shop's Lambdas) reach the API through the private endpoint; the public one
                # answers only `clusterEndpointPublicCidrs` (the deployer's machine runs the Kubernetes provider).
                endpoint_private_access=True,
                endpoint_public_access=True,
                public_access_cidrs=list(args.cluster.public_access_cidrs),
            ),
            # API mode: who may use the cluster is AWS resources (access entries), not the aws-auth ConfigMap.
            # The creator gets no implicit admin; the admins' access entries below are explicit and destroyable.
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API", bootstrap_cluster_creator_admin_permissions=False),
            enabled_cluster_log_types=list(CLUSTER_LOG_TYPES),
            tags={"Name": args.name_prefix},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*attachments, logs]),
        )

    def _create_admin_access(self, name: str, admin_arns: tuple[str, ...]) -> list[pulumi.Resource]:
        deployer = self._deployer_arn()
        if not admin_arns:
            # Nobody named: the identity running `pulumi up` administers the cluster (the Kubernetes provider
            # authenticates as it). Another principal's `up` would move this entry to itself, which is why shared
            # stacks list their admins in `clusterAdminArns`.
            return [self._admin(f"{name}-deployer", deployer)]
        if deployer not in admin_arns:
            # The Kubernetes provider runs as the deployer: not an admin, every Kubernetes resource gets a 401/403.
            pulumi.log.warn(f"{PROJECT}:clusterAdminArns does not list {deployer}, the identity running this "
                            "update; its Kubernetes resources will be refused", self)
        return [self._admin(f"{name}-admin-{admin_resource_suffix(arn)}", arn,
                            # Moving from the default to a list that names the deployer: the same entry, renamed.
                            # Without the alias Pulumi would create the new entry before deleting the old one,
                            # and EKS refuses a second access entry for one principal.
                            previous=f"{name}-deployer" if arn == deployer else None)
                for arn in admin_arns]

    @staticmethod
    def _deployer_arn() -> str:
        # A plain value (a blocking invoke), so names and aliases can depend on it. An assumed role's STS ARN is
        # not accepted by access entries; the session context gives its IAM role ARN.
        caller = aws.get_caller_identity()
        return str(aws.iam.get_session_context(arn=caller.arn).issuer_arn)

    def _admin(self, resource_name: str, principal: str, previous: str | None = None) -> pulumi.Resource:
        def opts(suffix: str = "") -> pulumi.ResourceOptions:
            aliases = [pulumi.Alias(name=f"{previous}{suffix}")] if previous else None
            return pulumi.ResourceOptions(parent=self, aliases=aliases)

        entry = aws.eks.AccessEntry(resource_name, cluster_name=self.cluster.name, principal_arn=principal,
                                    type="STANDARD", opts=opts())
        return aws.eks.AccessPolicyAssociation(
            f"{resource_name}-admin", cluster_name=self.cluster.name, principal_arn=entry.principal_arn,
            policy_arn=CLUSTER_ADMIN_POLICY,
            access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
            opts=opts("-admin"))

    def _create_node_group(self, name: str, args: PlatformArgs, network: Network) -> aws.eks.NodeGroup:
        role, attachments = self._role(f"{name}-node-role", "ec2.amazonaws.com", NODE_POLICIES)
        spec = args.cluster
        # Managed node groups get their EC2_LINUX access entry from EKS itself in API mode.
        return aws.eks.NodeGroup(
            f"{name}-nodes",
            cluster_name=self.cluster.name,
            node_role_arn=role.arn,
            subnet_ids=network.private_subnet_ids,
            instance_types=[spec.instance_type],
            ami_type=ami_type(spec.architecture),
            capacity_type="ON_DEMAND",
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                desired_size=spec.desired_size, min_size=spec.min_size, max_size=spec.max_size),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            labels={"serverless-mesh/architecture": spec.architecture},
            tags={"Name": f"{args.name_prefix}-nodes"},
            launch_template=node_launch_template(f"{name}-nodes", self),
            opts=pulumi.ResourceOptions(parent=self, depends_on=attachments),
        )


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

    def __init__(self, name: str, args: PlatformArgs, provider: k8s.Provider,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-mesh:platform:Istio", name, None, opts)
        self.provider = provider
        self.ingress = args.ingress
        system_ns = k8s.core.v1.Namespace(f"{name}-system-ns", metadata={"name": ISTIO_NAMESPACE},
                                          opts=k8s_opts(provider, self))
        ingress_ns = k8s.core.v1.Namespace(f"{name}-ingress-ns", metadata={"name": args.ingress.namespace},
                                           opts=k8s_opts(provider, self))
        self.base = self._release(f"{name}-base", ISTIO_BASE_RELEASE, "base", ISTIO_NAMESPACE, args.istio_version,
                                  {"defaultRevision": "default"}, [system_ns])
        self.istiod = self._release(f"{name}-istiod", ISTIOD_RELEASE, "istiod", ISTIO_NAMESPACE, args.istio_version,
                                    istiod_values(), [self.base])
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
            opts=k8s_opts(provider, self, [*self.ready, ingress_ns]))
        # The chart creates the gateway Service; reading it back (the Release docs' pattern) gives the NLB's name.
        service = k8s.core.v1.Service.get(
            f"{name}-gateway-service",
            pulumi.Output.concat(self.gateway_release.status.namespace, "/", self.gateway_release.status.name),
            opts=k8s_opts(provider, self, [self.gateway_release]))
        self.ingress_hostname = service.status.apply(load_balancer_hostname)
        self.register_outputs({"ingress_hostname": self.ingress_hostname})

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
            opts=k8s_opts(self.provider, self, depends_on),
        )


class Platform(pulumi.ComponentResource):
    """The cluster (created, or an existing one), its provider, Istio, and the service image repositories."""

    kubeconfig: pulumi.Output[str]
    ingress_hostname: pulumi.Output[str]
    ecr_repository_urls: pulumi.Output[dict[str, str]]

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-mesh:platform:Platform", name, None, opts)
        self.args = args
        self.network: Network | None = None
        self.cluster: EksCluster | None = None
        if args.kubeconfig:
            self.kubeconfig = pulumi.Output.secret(args.kubeconfig)
        else:
            self.network = Network(f"{name}-network", args, pulumi.ResourceOptions(parent=self))
            self.cluster = EksCluster(f"{name}-eks", args, self.network, pulumi.ResourceOptions(parent=self))
            self.kubeconfig = self.cluster.kubeconfig
        self.provider = self._create_provider(name)
        self.storage = self._create_storage(name, args)
        self.istio = Istio(f"{name}-istio", args, self.provider, pulumi.ResourceOptions(parent=self))
        self.repositories = self._create_repositories(name, args)
        self.ingress_hostname = self.istio.ingress_hostname
        self.ecr_repository_urls = pulumi.Output.all(
            **{svc: repo.repository_url for svc, repo in self.repositories.items()})
        self.register_outputs({"kubeconfig": self.kubeconfig, "ingress_hostname": self.ingress_hostname,
                               "ecr_repository_urls": self.ecr_repository_urls})

    @property
    def cluster_name(self) -> pulumi.Output[str] | None:
        return self.cluster.cluster_name if self.cluster else None

    @property
    def storage_class_name(self) -> str | None:
        """The StorageClass volume claims name: the stack's gp3 class, an existing cluster's configured one, or
        None for that cluster's default class."""
        if self.storage is not None:
            return self.storage.storage_class_name
        return self.args.storage_class_name or None

    @property
    def storage_ready(self) -> list[pulumi.Resource]:
        """Resources a workload with a volume claim must depend on (the CSI driver and its StorageClass)."""
        return list(self.storage.ready) if self.storage is not None else []

    @property
    def mesh_ready(self) -> list[pulumi.Resource]:
        """Resources an Istio custom resource or a meshed workload must depend on."""
        return list(self.istio.ready)

    def _create_provider(self, name: str) -> k8s.Provider:
        # The only Kubernetes provider: every Kubernetes resource names it, so no ambient kubeconfig is ever used.
        # Nodes (the first Helm release waits for pods) and every admin's policy (its first API call needs it).
        depends = [self.cluster.node_group, *self.cluster.admin_policies] if self.cluster else []
        return k8s.Provider(f"{name}-k8s", kubeconfig=self.kubeconfig, enable_server_side_apply=True,
                            opts=pulumi.ResourceOptions(parent=self, depends_on=depends))

    def _create_storage(self, name: str, args: PlatformArgs) -> BlockStorage | None:
        # Only on a cluster this stack creates; an existing cluster's storage is its owner's (storageClassName).
        if self.cluster is None:
            return None
        return BlockStorage(f"{name}-storage", BlockStorageArgs(
            cluster_name=self.cluster.cluster_name,
            kubernetes_version=args.cluster.version,
            oidc_provider_arn=self.cluster.oidc_provider_arn,
            oidc_issuer=self.cluster.oidc_issuer,
            provider=self.provider,
            nodes=self.cluster.node_group,
            protect_data=args.protect_data,
        ), pulumi.ResourceOptions(parent=self))

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
        if service not in self.args.images:
            raise KeyError(f"no image repository for {service!r}; services with a Dockerfile: {self.args.images}")
        if self.args.image_registry:
            return f"{self.args.image_registry.rstrip('/')}/{service}"
        return self.repositories[service].repository_url

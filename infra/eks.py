"""`EksCluster`: EKS with API-mode access entries, a managed node group and the cluster's IAM OIDC provider.

Built from pulumi-aws resources rather than the pulumi-eks component so every piece is a resource of its own, with
its inputs in the program's graph (a remote component's children are opaque to it). The AMI type, the kubeconfig
document and the admins' resource names are pure helpers.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws

from infra.config import PROJECT
from infra.iam import assume_role_policy
from infra.network import Network
from infra.node_access import node_launch_template

if TYPE_CHECKING:  # the Args the platform hands its children (infra.platform imports this module)
    from infra.platform import PlatformArgs

# AWS managed policies: the documented requirement of the EKS service role and of managed node groups.
CLUSTER_POLICIES = {"cluster": "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"}
NODE_POLICIES = {
    "worker": "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "cni": "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "ecr": "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
}
CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
CLUSTER_LOG_TYPES = ("api", "audit", "authenticator")


def ami_type(architecture: str) -> str:
    """The EKS-optimised Amazon Linux 2023 AMI for the node architecture."""
    return {"arm64": "AL2023_ARM_64_STANDARD", "x86_64": "AL2023_x86_64_STANDARD"}[architecture]


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

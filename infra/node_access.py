"""What pods and callers may reach on the platform's network edge: the nodes' instance metadata and the ingress NLB.

* Nodes answer instance-metadata requests only with IMDSv2 session tokens, and only one network hop away
  (`http_put_response_hop_limit=1`): a process on the node itself still gets them, but a pod (one hop further,
  behind its own network namespace) cannot fetch the node role's credentials. Pods that need AWS use IRSA (the EBS
  CSI driver does); the VPC CNI runs on the host network and is not affected.
* The internal NLB in front of the ingress gateway admits only the private subnets' addresses
  (`loadBalancerSourceRanges`, enforced by the cloud controller on the nodes' security group): the order functions
  run there, and nothing in the public subnets (or beyond) can open a connection to the ingress.
"""

from __future__ import annotations

from collections.abc import Iterable

import pulumi
import pulumi_aws as aws

IMDS_HOP_LIMIT = 1


def source_ranges(private_cidrs: Iterable[str], internal: bool) -> list[str]:
    """The NLB's `loadBalancerSourceRanges`: the private subnets for an internal ingress, none (open) otherwise."""
    return sorted(private_cidrs) if internal else []


def node_launch_template(name: str, parent: pulumi.Resource) -> aws.eks.NodeGroupLaunchTemplateArgs:
    """A launch template that only sets the metadata options (the node group keeps its AMI type and sizes)."""
    template = aws.ec2.LaunchTemplate(
        f"{name}-launch-template",
        description="EKS nodes: IMDSv2 only, hop limit 1 (pods cannot reach the node role)",
        metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
            http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=IMDS_HOP_LIMIT),
        opts=pulumi.ResourceOptions(parent=parent))
    return aws.eks.NodeGroupLaunchTemplateArgs(id=template.id, version=template.latest_version.apply(str))

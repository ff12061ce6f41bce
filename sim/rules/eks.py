"""EKS: clusters, managed node groups, access entries and access policy associations."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from infra.limits import is_graviton
from sim.rules.core import CloudRejection, rule, whole

_IAM_PRINCIPAL = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+$")
EKS_LOG_TYPES = {"api", "audit", "authenticator", "controllerManager", "scheduler"}
EKS_AMI_TYPES = {"AL2023_ARM_64_STANDARD", "AL2023_x86_64_STANDARD", "AL2023_ARM_64_NVIDIA", "AL2023_x86_64_NVIDIA",
                 "AL2023_x86_64_NEURON", "BOTTLEROCKET_ARM_64", "BOTTLEROCKET_x86_64", "CUSTOM"}


@rule("aws:eks/cluster:Cluster")
def _eks_cluster(inputs: dict[str, Any]) -> None:
    if not re.match(r"^1\.\d{2}$", str(inputs.get("version") or "")):
        raise CloudRejection(f"version {inputs.get('version')!r} is not a Kubernetes minor version like 1.33")
    if not str(inputs.get("roleArn") or "").startswith("arn:aws:iam::"):
        raise CloudRejection(f"roleArn {inputs.get('roleArn')!r} is not an IAM role ARN")
    subnets = (inputs.get("vpcConfig") or {}).get("subnetIds") or []
    if len(subnets) < 2:
        raise CloudRejection("EKS needs subnets in at least two availability zones")
    mode = (inputs.get("accessConfig") or {}).get("authenticationMode", "CONFIG_MAP")
    if mode not in ("API", "API_AND_CONFIG_MAP", "CONFIG_MAP"):
        raise CloudRejection(f"accessConfig.authenticationMode {mode!r}")
    unknown = set(inputs.get("enabledClusterLogTypes") or []) - EKS_LOG_TYPES
    if unknown:
        raise CloudRejection(f"unknown log types {sorted(unknown)}")


@rule("aws:eks/nodeGroup:NodeGroup")
def _eks_node_group(inputs: dict[str, Any]) -> None:
    ami = inputs.get("amiType")
    if ami not in EKS_AMI_TYPES:
        raise CloudRejection(f"amiType {ami!r} is not one of {sorted(EKS_AMI_TYPES)}")
    types = inputs.get("instanceTypes") or []
    if not types:
        raise CloudRejection("instanceTypes is empty")
    for instance_type in types:
        arm = is_graviton(instance_type)
        if ami != "CUSTOM" and arm != ("ARM_64" in str(ami)):
            raise CloudRejection(f"instance type {instance_type} ({'arm64' if arm else 'x86_64'}) "
                                 f"cannot boot amiType {ami}")
    scaling = inputs.get("scalingConfig") or {}
    lo, want, hi = (whole(scaling.get(k)) for k in ("minSize", "desiredSize", "maxSize"))
    if lo is None or want is None or hi is None or not 0 <= lo <= want <= hi or hi < 1:
        raise CloudRejection(f"scalingConfig needs 0 <= minSize <= desiredSize <= maxSize and maxSize >= 1, "
                             f"got {scaling}")
    if not inputs.get("subnetIds"):
        raise CloudRejection("subnetIds is empty")


@rule("aws:eks/accessEntry:AccessEntry")
def _eks_access_entry(inputs: dict[str, Any]) -> None:
    principal = str(inputs.get("principalArn") or "")
    if not _IAM_PRINCIPAL.match(principal):
        raise CloudRejection(f"principalArn {principal!r} must be an IAM role or user ARN (not an STS session)")
    if inputs.get("type", "STANDARD") not in ("STANDARD", "FARGATE_LINUX", "EC2_LINUX", "EC2_WINDOWS", "EC2"):
        raise CloudRejection(f"type {inputs.get('type')!r}")


@rule("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
def _eks_access_policy(inputs: dict[str, Any]) -> None:
    if not str(inputs.get("policyArn") or "").startswith("arn:aws:eks::aws:cluster-access-policy/"):
        raise CloudRejection(f"policyArn {inputs.get('policyArn')!r} is not an EKS access policy")
    scope = inputs.get("accessScope") or {}
    if scope.get("type") not in ("cluster", "namespace"):
        raise CloudRejection(f"accessScope.type {scope.get('type')!r} is not cluster or namespace")
    if scope.get("type") == "namespace" and not scope.get("namespaces"):
        raise CloudRejection("a namespace access scope needs namespaces")


# Names EKS lists for `describe-addon-versions` that this project may install (the add-on name is immutable).
EKS_ADDONS = {"aws-ebs-csi-driver", "aws-efs-csi-driver", "vpc-cni", "coredns", "kube-proxy",
              "eks-pod-identity-agent", "aws-mountpoint-s3-csi-driver", "snapshot-controller"}
# The provider's own check of addon_version (semver with a leading v); EKS versions read v1.48.0-eksbuild.1.
_ADDON_VERSION = re.compile(r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$")
_IAM_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")


@rule("aws:eks/addon:Addon")
def _eks_addon(inputs: dict[str, Any]) -> None:
    if inputs.get("addonName") not in EKS_ADDONS:
        raise CloudRejection(f"addonName {inputs.get('addonName')!r} is not an EKS add-on ({sorted(EKS_ADDONS)})")
    version = inputs.get("addonVersion")
    if version is not None and not _ADDON_VERSION.match(str(version)):
        raise CloudRejection(f"addonVersion {version!r} is not an EKS add-on version like v1.48.0-eksbuild.1")
    role = inputs.get("serviceAccountRoleArn")
    if role is not None and not _IAM_ROLE_ARN.match(str(role)):
        raise CloudRejection(f"serviceAccountRoleArn {role!r} is not an IAM role ARN")
    if inputs.get("resolveConflictsOnCreate", "NONE") not in ("NONE", "OVERWRITE"):
        raise CloudRejection(f"resolveConflictsOnCreate {inputs.get('resolveConflictsOnCreate')!r}")
    if inputs.get("resolveConflictsOnUpdate", "NONE") not in ("NONE", "OVERWRITE", "PRESERVE"):
        raise CloudRejection(f"resolveConflictsOnUpdate {inputs.get('resolveConflictsOnUpdate')!r}")


@rule("aws:eks/cluster:Cluster")
def _eks_public_access_cidrs(inputs: dict[str, Any]) -> None:
    vpc = inputs.get("vpcConfig") or {}
    cidrs = vpc.get("publicAccessCidrs")
    if cidrs is None:
        return
    if vpc.get("endpointPublicAccess") is False:
        raise CloudRejection("publicAccessCidrs is set but endpointPublicAccess is false")
    if not cidrs:
        raise CloudRejection("publicAccessCidrs is empty")
    for cidr in cidrs:
        try:
            ipaddress.IPv4Network(str(cidr), strict=True)
        except ValueError:
            raise CloudRejection(f"publicAccessCidrs entry {cidr!r} is not an IPv4 CIDR block") from None


@rule("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
def _eks_access_policy_principal(inputs: dict[str, Any]) -> None:
    principal = str(inputs.get("principalArn") or "")
    if not _IAM_PRINCIPAL.match(principal):
        raise CloudRejection(f"principalArn {principal!r} must be an IAM role or user ARN (not an STS session)")

"""`BlockStorage`: persistent volumes on a cluster this stack creates (the EBS CSI driver and a gp3 StorageClass).

EKS clusters since Kubernetes 1.23 provision EBS volumes only through the EBS CSI driver, which is not installed by
default; without it a PersistentVolumeClaim stays Pending and the in-cluster PostgreSQL never starts. The driver is
the `aws-ebs-csi-driver` EKS add-on; its controller calls the EC2 volume APIs as its own IAM role, assumed through
the cluster's OIDC provider (IRSA) by the `kube-system/ebs-csi-controller-sa` service account the add-on creates,
so the nodes' role keeps no EC2 volume rights. An existing cluster (`kubeconfig`) brings its own storage; the
stack only names its class (`storageClassName`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.iam import irsa_trust_policy
from infra.kube import k8s_opts

EBS_CSI_ADDON = "aws-ebs-csi-driver"
#: The AWS managed policy the EBS CSI controller needs (create/attach/delete/snapshot volumes, tag them).
EBS_CSI_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
EBS_CSI_NAMESPACE = "kube-system"
EBS_CSI_SERVICE_ACCOUNT = "ebs-csi-controller-sa"
EBS_CSI_PROVISIONER = "ebs.csi.aws.com"
STORAGE_CLASS = "gp3"


def storage_class_parameters() -> dict[str, str]:
    """gp3 (baseline 3000 IOPS, cheaper than gp2), encrypted at rest with the account's EBS key, ext4."""
    return {"type": "gp3", "encrypted": "true", "csi.storage.k8s.io/fstype": "ext4"}


@dataclass(frozen=True, kw_only=True)
class BlockStorageArgs:
    cluster_name: pulumi.Input[str]
    kubernetes_version: str
    """The cluster's version: the add-on version is EKS's default for it."""
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    nodes: pulumi.Resource
    """The node group: the add-on only becomes ACTIVE once its controller pods are scheduled."""
    protect_data: bool = False
    """Keep a volume when its claim is deleted (reclaimPolicy Retain)."""


class BlockStorage(pulumi.ComponentResource):
    storage_class_name: str
    """What a volume claim names (a plain string: the StatefulSet's volumeClaimTemplates are immutable)."""

    def __init__(self, name: str, args: BlockStorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-mesh:storage:BlockStorage", name, None, opts)
        self.args = args
        role, attachment = self._create_role(name)
        self.addon = self._create_addon(name, role, attachment)
        self.storage_class = self._create_storage_class(name)
        #: What a workload with a volume claim must wait for: the driver running, and the class its claim names.
        self.ready: list[pulumi.Resource] = [self.addon, self.storage_class]
        self.storage_class_name = STORAGE_CLASS
        self.register_outputs({"storage_class_name": self.storage_class_name})

    def _create_role(self, name: str) -> tuple[aws.iam.Role, aws.iam.RolePolicyAttachment]:
        args = self.args
        trust = pulumi.Output.all(args.oidc_provider_arn, args.oidc_issuer).apply(
            lambda a: irsa_trust_policy(a[0], a[1], EBS_CSI_NAMESPACE, EBS_CSI_SERVICE_ACCOUNT))
        role = aws.iam.Role(f"{name}-ebs-csi-role", assume_role_policy=trust,
                            description="EBS CSI controller (kube-system/ebs-csi-controller-sa, IRSA)",
                            opts=pulumi.ResourceOptions(parent=self))
        attachment = aws.iam.RolePolicyAttachment(f"{name}-ebs-csi-policy", role=role.name, policy_arn=EBS_CSI_POLICY,
                                                  opts=pulumi.ResourceOptions(parent=self))
        return role, attachment

    def _create_addon(self, name: str, role: aws.iam.Role,
                      attachment: aws.iam.RolePolicyAttachment) -> aws.eks.Addon:
        args = self.args
        # EKS's default add-on version for the cluster's Kubernetes version (what `describe-addon-versions` marks
        # defaultVersion): always compatible with `clusterVersion`, recorded in the state, and moved by EKS only
        # when AWS changes its default for that version.
        version = aws.eks.get_addon_version_output(addon_name=EBS_CSI_ADDON,
                                                   kubernetes_version=args.kubernetes_version, most_recent=False)
        return aws.eks.Addon(
            f"{name}-ebs-csi",
            cluster_name=args.cluster_name,
            addon_name=EBS_CSI_ADDON,
            addon_version=version.version,
            service_account_role_arn=role.arn,
            # The add-on owns its objects; nothing else in this stack edits them.
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            # The policy before the controller first calls EC2; nodes before EKS waits for the add-on to be ACTIVE.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[attachment, args.nodes]),
        )

    def _create_storage_class(self, name: str) -> k8s.storage.v1.StorageClass:
        return k8s.storage.v1.StorageClass(
            f"{name}-gp3",
            metadata={"name": STORAGE_CLASS},
            provisioner=EBS_CSI_PROVISIONER,
            parameters=storage_class_parameters(),
            # An EBS volume lives in one zone: bind it where the scheduler puts the pod, not in a random zone first.
            volume_binding_mode="WaitForFirstConsumer",
            reclaim_policy="Retain" if self.args.protect_data else "Delete",
            allow_volume_expansion=True,
            opts=k8s_opts(self),
        )


"""Volumes for the in-cluster database: the EBS CSI add-on with its IRSA role and the encrypted gp3 StorageClass on a
cluster the stack creates, and the configured class on an existing one."""

from __future__ import annotations

import copy
import json

import pytest

from infra.storage import EBS_CSI_POLICY, irsa_trust_policy
from sim.capture import Graph
from sim.invokes import EBS_CSI_DEFAULT_VERSION
from sim.rules import CloudRejection, check
from tests.infra.conftest import Capture
from tests.infra.platform_program import mesh_graph
from tests.infra.test_platform import EXISTING_KUBECONFIG

ADDON = "aws:eks/addon:Addon"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
STATEFUL_SET = "kubernetes:apps/v1:StatefulSet"


@pytest.fixture(scope="module")
def default() -> Graph:
    return mesh_graph()


def claim(graph: Graph) -> dict[str, object]:
    [template] = graph.one(STATEFUL_SET).inputs["spec"]["volumeClaimTemplates"]
    return dict(template["spec"])


def test_trust_policy_admits_only_the_controller_service_account_with_an_sts_audience() -> None:
    doc = json.loads(irsa_trust_policy("arn:aws:iam::1:oidc-provider/oidc.eks.x/id/AB", "https://oidc.eks.x/id/AB",
                                       "kube-system", "ebs-csi-controller-sa"))
    [statement] = doc["Statement"]
    assert statement["Principal"] == {"Federated": "arn:aws:iam::1:oidc-provider/oidc.eks.x/id/AB"}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"] == {"StringEquals": {
        "oidc.eks.x/id/AB:aud": "sts.amazonaws.com",
        "oidc.eks.x/id/AB:sub": "system:serviceaccount:kube-system:ebs-csi-controller-sa"}}


def test_the_ebs_csi_add_on_runs_as_its_own_irsa_role_at_ekss_default_version(default: Graph) -> None:
    addon = default.one(ADDON)
    cluster = default.one("aws:eks/cluster:Cluster")
    oidc = default.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    role = next(r for r in default.of_type("aws:iam/role:Role") if r.outputs["arn"] == addon.inputs[
        "serviceAccountRoleArn"])
    assert addon.inputs["addonName"] == "aws-ebs-csi-driver"
    assert addon.inputs["clusterName"] == cluster.outputs["name"]
    assert addon.inputs["addonVersion"] == EBS_CSI_DEFAULT_VERSION  # the mock's answer to getAddonVersion
    [statement] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert statement["Principal"]["Federated"] == oidc.outputs["arn"]
    attachments = [a for a in default.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                   if a.inputs["role"] == role.outputs["name"]]
    assert [a.inputs["policyArn"] for a in attachments] == [EBS_CSI_POLICY]


def test_the_storage_class_is_encrypted_gp3_bound_where_the_pod_lands(default: Graph) -> None:
    storage_class = default.one(STORAGE_CLASS)
    assert storage_class.inputs["metadata"]["name"] == "gp3"
    assert storage_class.inputs["provisioner"] == "ebs.csi.aws.com"
    assert storage_class.inputs["parameters"]["type"] == "gp3"
    assert storage_class.inputs["parameters"]["encrypted"] == "true"
    assert storage_class.inputs["volumeBindingMode"] == "WaitForFirstConsumer"
    assert storage_class.inputs["reclaimPolicy"] == "Delete"  # dev: `pulumi destroy` leaves no volume


def test_protected_stacks_keep_volumes_whose_claims_are_deleted() -> None:
    assert mesh_graph(protectData=True).one(STORAGE_CLASS).inputs["reclaimPolicy"] == "Retain"


def test_an_existing_cluster_gets_no_add_on_or_storage_class() -> None:
    graph = mesh_graph(kubeconfig=EXISTING_KUBECONFIG)
    assert not graph.of_type(ADDON) and not graph.of_type(STORAGE_CLASS)


def test_the_in_cluster_database_claims_the_stacks_storage_class(program_graph: Capture) -> None:
    graph = program_graph({"databaseMode": "incluster"})
    assert claim(graph)["storageClassName"] == graph.one(STORAGE_CLASS).inputs["metadata"]["name"]


@pytest.mark.parametrize(("storage_class", "expected"), [("fast-ssd", "fast-ssd"), ("", None)])
def test_on_an_existing_cluster_the_claim_names_the_configured_class_or_the_default(
        program_graph: Capture, storage_class: str, expected: str | None) -> None:
    graph = program_graph({"kubeconfig": EXISTING_KUBECONFIG, "databaseMode": "incluster", "ingressInternal": False,
                           "storageClassName": storage_class})
    assert claim(graph).get("storageClassName") == expected


# --- What EKS and Kubernetes refuse ---------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "message"), [
    ({"addonName": "ebs-csi"}, "is not an EKS add-on"),
    ({"addonVersion": "1.48.0"}, "is not an EKS add-on version"),
    ({"serviceAccountRoleArn": "ebs-csi-role"}, "is not an IAM role ARN"),
    ({"resolveConflictsOnCreate": "PRESERVE"}, "resolveConflictsOnCreate"),
])
def test_the_mock_refuses_an_add_on_eks_would(default: Graph, change: dict[str, str], message: str) -> None:
    addon = default.one(ADDON)
    check(addon.type, addon.name, addon.inputs)  # the program's own add-on passes
    with pytest.raises(CloudRejection, match=message):
        check(addon.type, addon.name, {**copy.deepcopy(addon.inputs), **change})


@pytest.mark.parametrize(("change", "message"), [
    ({"provisioner": "kubernetes.io/aws-ebs"}, "in-tree"),
    ({"volumeBindingMode": "Lazy"}, "volumeBindingMode"),
    ({"parameters": {"type": "gp4"}}, "not an EBS volume type"),
    ({"parameters": {"encrypted": True}}, "must be a string"),
])
def test_the_mock_refuses_a_storage_class_kubernetes_would(default: Graph, change: dict[str, object],
                                                           message: str) -> None:
    storage_class = default.one(STORAGE_CLASS)
    check(storage_class.type, storage_class.name, storage_class.inputs)
    with pytest.raises(CloudRejection, match=message):
        check(storage_class.type, storage_class.name, {**copy.deepcopy(storage_class.inputs), **change})


@pytest.mark.parametrize(("cidrs", "message"), [([], "is empty"), (["1.2.3.4/24"], "is not an IPv4 CIDR")])
def test_the_mock_refuses_public_access_cidrs_eks_would(default: Graph, cidrs: list[str], message: str) -> None:
    cluster = default.one("aws:eks/cluster:Cluster")
    inputs = copy.deepcopy(cluster.inputs)
    inputs["vpcConfig"]["publicAccessCidrs"] = cidrs
    with pytest.raises(CloudRejection, match=message):
        check(cluster.type, cluster.name, inputs)


def test_the_mock_refuses_an_admin_policy_for_an_sts_session(default: Graph) -> None:
    association = default.one("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    inputs = {**association.inputs, "principalArn": "arn:aws:sts::123456789012:assumed-role/Admin/me"}
    with pytest.raises(CloudRejection, match="not an STS session"):
        check(association.type, association.name, inputs)

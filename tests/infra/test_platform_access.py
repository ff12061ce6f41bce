"""Who reaches the cluster: the API endpoint's public CIDRs, the cluster admins' access entries, and the profile the
kubeconfig mints its tokens with."""

from __future__ import annotations

import json

import pytest

from infra.eks import CLUSTER_ADMIN_POLICY, admin_resource_suffix, kubeconfig_document
from infra.istio import istiod_values
from sim.capture import Graph
from tests.infra.platform_program import K8S_PROVIDER, capture_mesh, mesh_graph

ENTRY = "aws:eks/accessEntry:AccessEntry"
ASSOCIATION = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
OPS = "arn:aws:iam::123456789012:role/ops/PlatformAdmin"
CI = "arn:aws:iam::210987654321:role/ci-deployer"


@pytest.fixture(scope="module")
def admins() -> Graph:
    return capture_mesh({"clusterAdminArns": [OPS, CI]})


def entries(graph: Graph) -> dict[str, str]:
    """Resource name -> principal of every access entry."""
    return {e.name: e.inputs["principalArn"] for e in graph.of_type(ENTRY)}


# --- The public endpoint --------------------------------------------------------------------------------------

def test_public_endpoint_is_open_to_the_default_cidrs_and_private_access_stays_on() -> None:
    vpc = mesh_graph().one("aws:eks/cluster:Cluster").inputs["vpcConfig"]
    assert vpc["publicAccessCidrs"] == ["0.0.0.0/0"]
    assert vpc["endpointPrivateAccess"] is True, "nodes reach the API through the private endpoint"


def test_cluster_endpoint_public_cidrs_restrict_the_public_endpoint() -> None:
    graph = capture_mesh({"clusterEndpointPublicCidrs": ["1.2.3.0/24", "5.6.7.8/32"]})
    vpc = graph.one("aws:eks/cluster:Cluster").inputs["vpcConfig"]
    assert vpc["publicAccessCidrs"] == ["1.2.3.0/24", "5.6.7.8/32"]
    assert vpc["endpointPublicAccess"] is True


# --- Cluster admins -------------------------------------------------------------------------------------------

def test_without_cluster_admin_arns_the_deployer_keeps_its_one_entry() -> None:
    graph = mesh_graph()
    assert entries(graph) == {"platform-eks-deployer": "arn:aws:iam::123456789012:user/test"}
    assert [a.name for a in graph.of_type(ASSOCIATION)] == ["platform-eks-deployer-admin"]


def test_each_listed_admin_gets_an_entry_and_a_cluster_admin_policy(admins: Graph) -> None:
    assert sorted(entries(admins).values()) == sorted([OPS, CI])
    associations = {a.inputs["principalArn"]: a for a in admins.of_type(ASSOCIATION)}
    assert set(associations) == {OPS, CI}
    for association in associations.values():
        assert association.inputs["policyArn"] == CLUSTER_ADMIN_POLICY
        assert association.inputs["accessScope"] == {"type": "cluster"}


def test_admin_resource_names_come_from_the_arn_so_reordering_replaces_nothing(admins: Graph) -> None:
    reordered = capture_mesh({"clusterAdminArns": [CI, OPS]})
    assert entries(reordered) == entries(admins)
    assert f"platform-eks-admin-{admin_resource_suffix(OPS)}" in entries(admins)
    assert admin_resource_suffix(OPS).startswith("123456789012-role-ops-platformadmin-")
    assert admin_resource_suffix(OPS) != admin_resource_suffix(OPS.replace("ops/", "ops-"))


def test_the_kubernetes_provider_waits_for_every_admin_policy(admins: Graph) -> None:
    provider = admins.one(K8S_PROVIDER)
    for association in admins.of_type(ASSOCIATION):
        assert association.urn in provider.dependencies, f"{provider.urn} may connect before {association.urn}"


# --- The kubeconfig's token -----------------------------------------------------------------------------------

def test_kubeconfig_runs_get_token_with_the_stacks_aws_profile() -> None:
    graph = capture_mesh({"aws:profile": "ops"})
    user = json.loads(graph.one(K8S_PROVIDER).inputs["kubeconfig"])["users"][0]["user"]["exec"]
    assert user["env"] == [{"name": "AWS_PROFILE", "value": "ops"}]
    assert user["command"] == "aws" and user["args"][:2] == ["eks", "get-token"]


def test_kubeconfig_without_a_profile_uses_the_ambient_credentials() -> None:
    user = json.loads(kubeconfig_document("c", "https://x", "ca", "eu-west-1"))["users"][0]["user"]["exec"]
    assert "env" not in user


# --- Chart values ---------------------------------------------------------------------------------------------

def test_istiod_resources_are_set_where_the_istiod_chart_reads_them() -> None:
    values = istiod_values()
    assert "pilot" not in values, "the istiod chart ignores pilot.resources (its template reads .Values.resources)"
    assert values["resources"]["requests"] == {"cpu": "100m", "memory": "256Mi"}


def test_a_deployer_missing_from_cluster_admin_arns_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    deployer = "arn:aws:iam::123456789012:user/test"  # the mock's caller
    with caplog.at_level("WARNING"):
        capture_mesh({"clusterAdminArns": [OPS]})
    assert any(f"clusterAdminArns does not list {deployer}" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level("WARNING"):
        capture_mesh({"clusterAdminArns": [OPS, deployer]})
    assert not any("clusterAdminArns does not list" in r.getMessage() for r in caplog.records)


def test_listing_the_deployer_renames_its_default_entry_instead_of_adding_a_second(
        sent_aliases: dict[str, list[str]]) -> None:
    aliases = sent_aliases
    deployer = "arn:aws:iam::123456789012:user/test"  # the mock's caller
    capture_mesh({"clusterAdminArns": [OPS, deployer]})
    mine = f"platform-eks-admin-{admin_resource_suffix(deployer)}"
    assert any("platform-eks-deployer" in a for a in aliases[mine]), aliases[mine]
    assert any("platform-eks-deployer-admin" in a for a in aliases[f"{mine}-admin"]), aliases[f"{mine}-admin"]
    assert not aliases[f"platform-eks-admin-{admin_resource_suffix(OPS)}"]

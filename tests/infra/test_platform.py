"""The platform under the recording mocks: VPC, EKS, node group, OIDC, the Kubernetes provider, Istio, ECR."""

from __future__ import annotations

import ipaddress
import json

import pytest

from infra.config import project_schema
from infra.containers import service_images
from infra.eks import CLUSTER_ADMIN_POLICY, ami_type, kubeconfig_document
from infra.istio import ISTIO_CHARTS, gateway_release_name
from infra.network import subnet_plan
from mesh.gateway import IngressSettings
from sim.capture import Graph, Resource
from tests.infra.platform_program import (
    ISTIO_TYPES,
    K8S_PROVIDER,
    NAMESPACE,
    RELEASE,
    SERVICE,
    kubernetes_resources,
    mesh_graph,
)

EXISTING_KUBECONFIG = json.dumps({
    "apiVersion": "v1", "kind": "Config", "current-context": "lab",
    "clusters": [{"name": "lab", "cluster": {"server": "https://lab.example:6443"}}],
    "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "lab"}}],
    "users": [{"name": "lab", "user": {"token": "not-a-real-token"}}],
})
CLUSTER_TYPES = ("aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet", "aws:ec2/natGateway:NatGateway",
                 "aws:eks/cluster:Cluster", "aws:eks/nodeGroup:NodeGroup",
                 "aws:iam/openIdConnectProvider:OpenIdConnectProvider", "aws:eks/accessEntry:AccessEntry")


@pytest.fixture(scope="module")
def default() -> Graph:
    return mesh_graph()


@pytest.fixture(scope="module")
def existing() -> Graph:
    return mesh_graph(kubeconfig=EXISTING_KUBECONFIG)


def tag(resource: Resource, key: str) -> str | None:
    return (resource.inputs.get("tags") or {}).get(key)


def release(graph: Graph, chart: str) -> Resource:
    found = [r for r in graph.of_type(RELEASE) if r.inputs["chart"] == chart]
    assert len(found) == 1, f"expected one Helm release of chart {chart}, got {[r.urn for r in found]}"
    return found[0]


# --- Pure helpers -----------------------------------------------------------------------------------------

def test_subnet_plan_gives_each_zone_a_public_and_a_private_subnet_inside_the_vpc_without_overlap() -> None:
    plan = subnet_plan("10.0.0.0/16", zones=2)
    vpc = ipaddress.ip_network("10.0.0.0/16")
    nets = [ipaddress.ip_network(p.cidr) for p in plan]
    assert sorted((p.tier, p.zone_index) for p in plan) == [
        ("private", 0), ("private", 1), ("public", 0), ("public", 1)]
    assert all(n.subnet_of(vpc) for n in nets)
    assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1:])


def test_ami_type_follows_node_architecture() -> None:
    assert ami_type("arm64") == "AL2023_ARM_64_STANDARD"
    assert ami_type("x86_64") == "AL2023_x86_64_STANDARD"


def test_kubeconfig_document_authenticates_with_aws_eks_get_token() -> None:
    doc = json.loads(kubeconfig_document("c1", "https://x.eks", "Q0E=", "eu-west-1"))
    user = doc["users"][0]["user"]
    assert doc["clusters"][0]["cluster"] == {"server": "https://x.eks", "certificate-authority-data": "Q0E="}
    assert user["exec"]["command"] == "aws"
    assert user["exec"]["args"][:4] == ["eks", "get-token", "--cluster-name", "c1"]
    assert "token" not in user and "client-key-data" not in user


def test_gateway_release_name_refuses_a_selector_the_chart_would_not_label() -> None:
    assert gateway_release_name(IngressSettings()) == "istio-ingressgateway"
    with pytest.raises(ValueError, match="does not match the gateway release name"):
        gateway_release_name(IngressSettings(selector={"istio": "public-gw"}))


def test_every_service_with_a_dockerfile_gets_an_image_repository() -> None:
    assert {"myapp", "inventory", "product", "notification"} <= set(service_images())


# --- Default: a VPC and an EKS cluster --------------------------------------------------------------------

def test_default_creates_a_vpc_with_public_and_private_subnets_in_two_zones(default: Graph) -> None:
    subnets = default.of_type("aws:ec2/subnet:Subnet")
    zones = {(s.name.split("-")[-2], s.inputs["availabilityZone"]) for s in subnets}
    assert len(default.of_type("aws:ec2/vpc:Vpc")) == 1
    assert zones == {("public", "eu-west-1a"), ("public", "eu-west-1b"),
                     ("private", "eu-west-1a"), ("private", "eu-west-1b")}, zones


def test_public_subnets_route_to_the_internet_gateway_and_private_ones_to_the_single_nat(default: Graph) -> None:
    igw = default.one("aws:ec2/internetGateway:InternetGateway")
    nat = default.one("aws:ec2/natGateway:NatGateway")
    public_rt = default.one("aws:ec2/routeTable:RouteTable", "platform-network-public-rt")
    private_rt = default.one("aws:ec2/routeTable:RouteTable", "platform-network-private-rt")
    assert public_rt.inputs["routes"] == [{"cidrBlock": "0.0.0.0/0", "gatewayId": igw.id}]
    assert private_rt.inputs["routes"] == [{"cidrBlock": "0.0.0.0/0", "natGatewayId": nat.id}]
    public_subnet_ids = {s.id for s in default.of_type("aws:ec2/subnet:Subnet") if "public" in s.name}
    assert nat.inputs["subnetId"] in public_subnet_ids, f"{nat.urn} is not in a public subnet"
    associations = {(a.inputs["subnetId"], a.inputs["routeTableId"])
                    for a in default.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")}
    for subnet in default.of_type("aws:ec2/subnet:Subnet"):
        table = public_rt if "public" in subnet.name else private_rt
        assert (subnet.id, table.id) in associations, f"{subnet.urn} is not associated with {table.urn}"


def test_subnets_carry_the_load_balancer_role_tags(default: Graph) -> None:
    for subnet in default.of_type("aws:ec2/subnet:Subnet"):
        role = "kubernetes.io/role/elb" if "public" in subnet.name else "kubernetes.io/role/internal-elb"
        assert tag(subnet, role) == "1", f"{subnet.urn} lacks {role}"
        assert tag(subnet, "kubernetes.io/cluster/serverless-mesh-dev") == "shared", subnet.urn
        assert subnet.inputs.get("mapPublicIpOnLaunch") is ("public" in subnet.name), subnet.urn


def test_default_creates_an_eks_cluster_in_api_access_mode_on_both_tiers(default: Graph) -> None:
    cluster = default.one("aws:eks/cluster:Cluster")
    subnet_ids = {s.id for s in default.of_type("aws:ec2/subnet:Subnet")}
    assert cluster.inputs["name"] == "serverless-mesh-dev"
    assert cluster.inputs["version"] == "1.33"
    assert cluster.inputs["accessConfig"] == {"authenticationMode": "API",
                                              "bootstrapClusterCreatorAdminPermissions": False}
    assert set(cluster.inputs["vpcConfig"]["subnetIds"]) == subnet_ids


def test_the_deployer_gets_a_cluster_admin_access_entry(default: Graph) -> None:
    cluster = default.one("aws:eks/cluster:Cluster")
    entry = default.one("aws:eks/accessEntry:AccessEntry")
    association = default.one("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert entry.inputs["clusterName"] == cluster.outputs["name"]
    assert entry.inputs["principalArn"] == "arn:aws:iam::123456789012:user/test"  # the mock's caller
    assert association.inputs["principalArn"] == entry.inputs["principalArn"]
    assert association.inputs["policyArn"] == CLUSTER_ADMIN_POLICY
    assert association.inputs["accessScope"] == {"type": "cluster"}


def test_cluster_log_group_is_owned_with_retention_before_the_cluster(default: Graph) -> None:
    logs = default.one("aws:cloudwatch/logGroup:LogGroup", "platform-eks-logs")
    cluster = default.one("aws:eks/cluster:Cluster")
    assert logs.inputs["name"] == "/aws/eks/serverless-mesh-dev/cluster"
    assert logs.inputs["retentionInDays"] == 7  # the dev stack's logRetentionDays
    assert logs.urn in cluster.dependencies


def test_node_group_takes_instance_type_sizes_and_arm_ami_from_config(default: Graph) -> None:
    nodes = default.one("aws:eks/nodeGroup:NodeGroup")
    private_ids = {s.id for s in default.of_type("aws:ec2/subnet:Subnet") if "private" in s.name}
    assert nodes.inputs["instanceTypes"] == ["t4g.large"]
    assert nodes.inputs["amiType"] == "AL2023_ARM_64_STANDARD"
    assert nodes.inputs["scalingConfig"] == {"desiredSize": 2, "minSize": 1, "maxSize": 4}
    assert set(nodes.inputs["subnetIds"]) == private_ids, f"{nodes.urn} must run in the private subnets"


def test_x86_nodes_get_the_x86_ami() -> None:
    graph = mesh_graph(nodeArchitecture="x86_64", nodeInstanceType="m7i.large", nodeDesiredSize=3, nodeMaxSize=5)
    nodes = graph.one("aws:eks/nodeGroup:NodeGroup")
    assert nodes.inputs["amiType"] == "AL2023_x86_64_STANDARD"
    assert nodes.inputs["instanceTypes"] == ["m7i.large"]
    assert nodes.inputs["scalingConfig"] == {"desiredSize": 3, "minSize": 1, "maxSize": 5}


def test_cluster_and_node_roles_carry_the_aws_managed_eks_policies(default: Graph) -> None:
    attached: dict[str, set[str]] = {}
    roles = {r.outputs["name"]: r for r in default.of_type("aws:iam/role:Role")}
    for attachment in default.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment"):
        attached.setdefault(attachment.inputs["role"], set()).add(attachment.inputs["policyArn"].split("/")[-1])
    cluster_role = default.one("aws:iam/role:Role", "platform-eks-cluster-role")
    node_role = default.one("aws:iam/role:Role", "platform-eks-node-role")
    assert attached[cluster_role.outputs["name"]] == {"AmazonEKSClusterPolicy"}
    assert attached[node_role.outputs["name"]] == {"AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy",
                                                   "AmazonEC2ContainerRegistryReadOnly"}
    assert "eks.amazonaws.com" in roles[cluster_role.outputs["name"]].inputs["assumeRolePolicy"]
    assert "ec2.amazonaws.com" in roles[node_role.outputs["name"]].inputs["assumeRolePolicy"]


def test_oidc_provider_trusts_the_cluster_issuer_for_sts(default: Graph) -> None:
    cluster = default.one("aws:eks/cluster:Cluster")
    oidc = default.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert oidc.inputs["url"] == cluster.outputs["identities"][0]["oidcs"][0]["issuer"]
    assert oidc.inputs["clientIdLists"] == ["sts.amazonaws.com"]


def test_default_provider_uses_the_cluster_kubeconfig_and_waits_for_nodes(default: Graph) -> None:
    provider = default.one(K8S_PROVIDER)
    cluster = default.one("aws:eks/cluster:Cluster")
    doc = json.loads(provider.inputs["kubeconfig"])
    assert doc["clusters"][0]["cluster"]["server"] == cluster.outputs["endpoint"]
    assert doc["users"][0]["user"]["exec"]["args"][3] == "serverless-mesh-dev"
    assert default.one("aws:eks/nodeGroup:NodeGroup").urn in provider.dependencies


def test_kubeconfig_is_a_secret(default: Graph, existing: Graph) -> None:
    assert default.exports["kubeconfigIsSecret"] is True
    assert existing.exports["kubeconfigIsSecret"] is True


# --- An existing cluster ----------------------------------------------------------------------------------

def test_kubeconfig_config_creates_no_vpc_cluster_node_group_or_oidc(existing: Graph) -> None:
    created = [r.urn for r in existing.resources if r.type in CLUSTER_TYPES]
    assert created == []


def test_kubeconfig_config_is_what_the_provider_connects_with(existing: Graph) -> None:
    assert existing.one(K8S_PROVIDER).inputs["kubeconfig"] == EXISTING_KUBECONFIG


@pytest.mark.parametrize("mode", ["default", "existing"])
def test_every_kubernetes_resource_names_the_one_explicit_provider(mode: str, default: Graph,
                                                                   existing: Graph) -> None:
    graph = default if mode == "default" else existing
    provider = graph.one(K8S_PROVIDER)
    resources = kubernetes_resources(graph)
    assert len(resources) >= 12
    for resource in resources:
        assert resource.provider and resource.provider.startswith(provider.urn + "::"), \
            f"{resource.urn} uses provider {resource.provider}, not {provider.urn}"


# --- Istio ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("chart,release_name,namespace", [
    ("base", "istio-base", "istio-system"),
    ("istiod", "istiod", "istio-system"),
    ("gateway", "istio-ingressgateway", "istio-ingress"),
])
def test_istio_charts_come_from_the_official_repository_pinned_to_istio_version(
        default: Graph, chart: str, release_name: str, namespace: str) -> None:
    found = release(default, chart)
    assert found.inputs["version"] == project_schema()["istioVersion"]["default"], \
        f"{found.urn} is not pinned to istioVersion"
    assert found.inputs["repositoryOpts"] == {"repo": ISTIO_CHARTS}
    assert found.inputs["name"] == release_name
    assert found.inputs["namespace"] == namespace
    assert found.inputs.get("skipAwait") is False, f"{found.urn} must be awaited so dependents see its resources"


def test_istio_version_config_moves_every_chart() -> None:
    graph = mesh_graph(istioVersion="1.27.3")
    assert {r.inputs["version"] for r in graph.of_type(RELEASE)} == {"1.27.3"}


def test_istiod_depends_on_base_and_gateway_on_istiod(default: Graph) -> None:
    base, istiod, gateway = (release(default, c) for c in ("base", "istiod", "gateway"))
    assert base.urn in istiod.dependencies, f"{istiod.urn} must depend on {base.urn}"
    assert istiod.urn in gateway.dependencies, f"{gateway.urn} must depend on {istiod.urn}"


def test_releases_wait_for_their_namespaces(default: Graph) -> None:
    namespaces = {r.inputs["metadata"]["name"]: r.urn for r in default.of_type(NAMESPACE)}
    assert namespaces["istio-system"] in release(default, "base").dependencies
    assert namespaces["istio-ingress"] in release(default, "gateway").dependencies


def test_every_istio_custom_resource_depends_on_the_base_and_istiod_releases(default: Graph) -> None:
    base, istiod = release(default, "base"), release(default, "istiod")
    custom = [r for r in default.resources if r.type in ISTIO_TYPES]
    assert {r.type for r in custom} == set(ISTIO_TYPES)
    for resource in custom:
        assert base.urn in resource.dependencies, f"{resource.urn} does not depend on {base.urn} (CRDs)"
        assert istiod.urn in resource.dependencies, f"{resource.urn} does not depend on {istiod.urn} (webhooks)"


def test_ingress_gateway_is_an_internal_nlb_when_ingress_internal(default: Graph) -> None:
    service = release(default, "gateway").inputs["values"]["service"]
    assert service["type"] == "LoadBalancer"
    assert service["annotations"]["service.beta.kubernetes.io/aws-load-balancer-type"] == "nlb"
    assert service["annotations"]["service.beta.kubernetes.io/aws-load-balancer-internal"] == "true"
    assert service["annotations"]["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internal"


def test_ingress_gateway_is_internet_facing_when_ingress_internal_is_false() -> None:
    annotations = release(mesh_graph(ingressInternal=False), "gateway").inputs["values"]["service"]["annotations"]
    assert "service.beta.kubernetes.io/aws-load-balancer-internal" not in annotations
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internet-facing"


def test_gateway_resource_selects_the_gateway_release_pods(default: Graph) -> None:
    gateway_cr = default.one("kubernetes:networking.istio.io/v1:Gateway")
    gateway_release = release(default, "gateway")
    assert gateway_cr.inputs["metadata"] == {"name": "ingress", "namespace": gateway_release.inputs["namespace"]}
    # The chart labels its pods `istio: <release name without "istio-">`.
    assert gateway_cr.inputs["spec"]["selector"] == {"istio": gateway_release.inputs["name"].removeprefix("istio-")}
    assert gateway_cr.inputs["spec"]["servers"][0]["port"] == {"number": 80, "name": "http", "protocol": "HTTP"}


def test_no_kubernetes_service_is_registered_for_the_gateway_the_chart_owns(default: Graph) -> None:
    names = [r.inputs["metadata"]["name"] for r in default.of_type(SERVICE)]
    assert "istio-ingressgateway" not in names


# --- ECR --------------------------------------------------------------------------------------------------

def test_each_service_image_gets_a_scanned_immutable_ecr_repository_force_deleted_on_dev(default: Graph) -> None:
    repos = {r.inputs["name"]: r for r in default.of_type("aws:ecr/repository:Repository")}
    assert set(repos) == {f"serverless-mesh-dev/{s}" for s in ("myapp", "inventory", "product", "notification")}
    for repo in repos.values():
        assert repo.inputs["imageScanningConfiguration"] == {"scanOnPush": True}, repo.urn
        assert repo.inputs["imageTagMutability"] == "IMMUTABLE", repo.urn
        assert repo.inputs["forceDelete"] is True, f"{repo.urn}: dev (protectData false) must destroy cleanly"


def test_protected_stacks_keep_repositories_with_images() -> None:
    repos = mesh_graph(protectData=True).of_type("aws:ecr/repository:Repository")
    assert repos and all(r.inputs["forceDelete"] is False for r in repos)


def test_image_registry_config_replaces_the_ecr_repositories() -> None:
    graph = mesh_graph(imageRegistry="ghcr.io/example/")
    assert graph.of_type("aws:ecr/repository:Repository") == []
    images = {d.inputs["metadata"]["name"]: d.inputs["spec"]["template"]["spec"]["containers"][0]["image"]
              for d in graph.of_type("kubernetes:apps/v1:Deployment")}
    assert images == {"myapp-v1": "ghcr.io/example/myapp:1.0.0", "myapp-v2": "ghcr.io/example/myapp:2.0.0"}

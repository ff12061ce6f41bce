"""A deployment rehearsal: the whole dev program under the mocks, checked for the ordering facts a real `pulumi up`
(and `pulumi destroy`, which runs the same edges backwards) depends on.

The mocks create everything at once, so a missing edge passes here and fails in the cloud: a custom resource
sent before its CRD exists, a VPC function created before its ENI rights, a bucket notification S3 validates
before its invoke permission, a volume claim with no CSI driver, a Kubernetes provider whose identity is not yet
a cluster admin. Each fact is checked through what the engine orders by: a resource's recorded dependencies
(explicit `depends_on`, expanded by the SDK to a component's children, plus the resources its inputs came from),
its parent chain (a child registers after its parent, and a component after its own dependencies) and its
provider. Each failure names the resources that break it.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from infra.config import stack_config_values
from sim.capture import Graph, Resource, capture
from tests.infra.conftest import TEST_SECRETS, Capture, run_main

K8S_PROVIDER = "pulumi:providers:kubernetes"
RELEASE = "kubernetes:helm.sh/v3:Release"
FUNCTION = "aws:lambda/function:Function"
POLICY_TYPES = ("aws:iam/rolePolicy:RolePolicy", "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
IMAGE = "docker-build:index:Image"
WORKLOADS = ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet", "kubernetes:apps/v1:DaemonSet",
             "kubernetes:batch/v1:Job")
JOB = "kubernetes:batch/v1:Job"
ISTIO_GROUPS = ("kubernetes:networking.istio.io/", "kubernetes:security.istio.io/", "kubernetes:telemetry.istio.io/")


# --- What "created after" means --------------------------------------------------------------------------------

def predecessors(graph: Graph, resource: Resource) -> set[str]:
    """Every URN the engine finishes before `resource` starts: dependencies, parents and providers, transitively."""
    index = {r.urn: r for r in graph.resources}
    seen: set[str] = set()
    pending = [resource.urn]
    while pending:
        current = index.get(pending.pop())
        if current is None:
            continue
        provider = current.provider.rsplit("::", 1)[0] if current.provider else None  # `<urn>::<id>`
        edges = [*current.dependencies, current.parent, provider]
        for urn in edges:
            if urn and urn not in seen:
                seen.add(urn)
                pending.append(urn)
    return seen


def not_before(graph: Graph, resource: Resource, required: Iterable[Resource]) -> list[str]:
    """The `required` resources that the engine could still be creating when it starts `resource`."""
    before = predecessors(graph, resource)
    return [r.urn for r in required if r.urn not in before]


def chart_release(graph: Graph, chart: str) -> Resource:
    [found] = [r for r in graph.of_type(RELEASE) if r.inputs.get("chart") == chart]
    return found


def containers(resource: Resource) -> list[dict[str, object]]:
    pod = ((resource.inputs.get("spec") or {}).get("template") or {}).get("spec") or {}
    return [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]


@pytest.fixture(scope="module")
def analysed() -> Graph:
    """The dev stack with `canaryAnalysis` on: Prometheus and the canary gate."""
    return capture(run_main, stack_config_values("dev", {"canaryAnalysis": True}, secrets=TEST_SECRETS))


@pytest.fixture(scope="module")
def incluster() -> Graph:
    """The dev stack with its PostgreSQL in the cluster (a StatefulSet claiming an EBS volume)."""
    return capture(run_main, stack_config_values("dev", {"databaseMode": "incluster"}, secrets=TEST_SECRETS))


# --- The facts -------------------------------------------------------------------------------------------------

def test_every_istio_custom_resource_comes_after_the_releases_that_install_its_crds(dev_graph: Graph) -> None:
    crd_releases = [chart_release(dev_graph, "base"), chart_release(dev_graph, "istiod")]
    custom = [r for r in dev_graph.resources if r.type.startswith(ISTIO_GROUPS)]
    assert len(custom) >= 10, "the dev program's Istio resources were not captured"
    broken = {r.urn: late for r in custom if (late := not_before(dev_graph, r, crd_releases))}
    assert not broken, f"custom resources that can be sent before their CRDs and istiod's webhook: {broken}"


def test_the_virtual_service_changes_only_after_the_gate_has_judged_the_weight(analysed: Graph) -> None:
    # The gate fails the update on an unhealthy raise; only an edge from the VirtualService to it makes the engine
    # leave the weights alone then (it updates nothing that depends on a failed resource).
    from infra.gate import GATE_TYPE

    gate = analysed.one(GATE_TYPE)
    [virtual_service] = [r for r in analysed.of_type("kubernetes:networking.istio.io/v1:VirtualService")
                         if r.parent == gate.parent]
    late = not_before(analysed, virtual_service, [gate])
    assert not late, f"{virtual_service.urn} can change its weights before the gate judged them: {late}"


def test_the_gate_queries_prometheus_only_after_it_and_istio_are_installed(analysed: Graph) -> None:
    from infra.gate import GATE_TYPE

    gate = analysed.one(GATE_TYPE)
    prometheus = chart_release(analysed, "prometheus")
    late = not_before(analysed, gate, [prometheus])
    assert not late, f"{gate.urn} can query before Prometheus runs: {late}"
    late = not_before(analysed, prometheus, [chart_release(analysed, "base"), chart_release(analysed, "istiod")])
    assert not late, f"{prometheus.urn} can install before the Istio proxies it scrapes are injected: {late}"


def test_every_function_comes_after_its_roles_policies_and_vpc_functions_exist(dev_graph: Graph) -> None:
    roles = {r.outputs["arn"]: r for r in dev_graph.of_type("aws:iam/role:Role")}
    policies = [r for r in dev_graph.resources if r.type in POLICY_TYPES]
    vpc_functions = [f for f in dev_graph.of_type(FUNCTION) if (f.inputs.get("vpcConfig") or {}).get("subnetIds")]
    assert {f.name for f in vpc_functions} == {"shop-functions-orders-create-function",
                                               "shop-functions-orders-get-function",
                                               "shop-functions-orders-list-function"}
    for function in dev_graph.of_type(FUNCTION):
        role = roles[function.inputs["role"]]
        own = [p for p in policies if p.inputs.get("role") in (role.id, role.outputs.get("name"))]
        assert own, f"{function.urn}: no policy found for its role {role.urn}"
        late = not_before(dev_graph, function, own)
        assert not late, f"{function.urn} can be created before its role's policies {late}"


def test_vpc_functions_move_their_enis_to_the_vpcs_default_group_before_deletion(dev_graph: Graph) -> None:
    vpc = dev_graph.one("aws:ec2/vpc:Vpc")
    for function in dev_graph.of_type(FUNCTION):
        if (function.inputs.get("vpcConfig") or {}).get("subnetIds"):
            assert function.inputs.get("replaceSecurityGroupsOnDestroy") is True, function.urn
            assert function.inputs["replacementSecurityGroupIds"] == [vpc.outputs["defaultSecurityGroupId"]]
            assert vpc.urn in predecessors(dev_graph, function), f"{function.urn} would outlive its replacement group"
        else:
            assert "replaceSecurityGroupsOnDestroy" not in function.inputs, function.urn


def test_the_mock_refuses_replacement_groups_without_the_flag_or_the_vpc(dev_graph: Graph) -> None:
    from sim.rules import CloudRejection, check

    function = dev_graph.one(FUNCTION, "shop-functions-orders-create-function")
    check(function.type, function.name, function.inputs)
    with pytest.raises(CloudRejection, match="requires replaceSecurityGroupsOnDestroy"):
        check(function.type, function.name, {**function.inputs, "replaceSecurityGroupsOnDestroy": False})
    with pytest.raises(CloudRejection, match="needs a vpcConfig"):
        check(function.type, function.name, {**function.inputs, "vpcConfig": None})


def test_bucket_notifications_come_after_the_permissions_that_let_s3_invoke_their_functions(
        dev_graph: Graph) -> None:
    functions = {f.outputs["arn"]: f for f in dev_graph.of_type(FUNCTION)}
    permissions = dev_graph.of_type("aws:lambda/permission:Permission")
    notifications = dev_graph.of_type("aws:s3/bucketNotification:BucketNotification")
    assert notifications, "the image pipeline's notification was not captured"
    for notification in notifications:
        for target in notification.inputs.get("lambdaFunctions") or []:
            function = functions[target["lambdaFunctionArn"]]
            granting = [p for p in permissions if p.inputs.get("function") in (function.outputs["name"],
                                                                              function.outputs["arn"])
                        and p.inputs.get("principal") == "s3.amazonaws.com"]
            assert granting, f"{notification.urn}: nothing lets S3 invoke {function.urn}"
            late = not_before(dev_graph, notification, granting)
            assert not late, f"{notification.urn} can be put before S3 may invoke its function: {late}"


def test_the_kubernetes_provider_comes_after_the_nodes_and_every_admin_access_policy(dev_graph: Graph) -> None:
    provider = dev_graph.one(K8S_PROVIDER)
    required = [dev_graph.one("aws:eks/nodeGroup:NodeGroup"),
                *dev_graph.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")]
    assert len(required) >= 2
    late = not_before(dev_graph, provider, required)
    assert not late, f"{provider.urn} can connect before {late}"


def test_the_kubernetes_provider_waits_for_every_listed_admin(program_graph: Capture) -> None:
    admins = ["arn:aws:iam::123456789012:role/Platform", "arn:aws:iam::123456789012:user/test"]
    graph = program_graph({"clusterAdminArns": admins})
    associations = graph.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert sorted(a.inputs["principalArn"] for a in associations) == sorted(admins)
    late = not_before(graph, graph.one(K8S_PROVIDER), associations)
    assert not late, f"the Kubernetes provider can connect before {late}"


def test_the_in_cluster_database_comes_after_the_ebs_driver_and_the_storage_class_it_claims(incluster: Graph) -> None:
    stateful_set = incluster.one("kubernetes:apps/v1:StatefulSet")
    addon = incluster.one("aws:eks/addon:Addon")
    storage_class = incluster.one("kubernetes:storage.k8s.io/v1:StorageClass")
    late = not_before(incluster, stateful_set, [addon, storage_class])
    assert not late, f"{stateful_set.urn} can claim a volume before {late}"
    [claim] = stateful_set.inputs["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["storageClassName"] == storage_class.inputs["metadata"]["name"]
    assert storage_class.inputs["provisioner"] == "ebs.csi.aws.com"
    # The add-on becomes ACTIVE only once its controller runs: on nodes, as a role that already has its policy.
    attachment = next(r for r in incluster.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                      if r.inputs["policyArn"].endswith("/AmazonEBSCSIDriverPolicy"))
    late = not_before(incluster, addon, [incluster.one("aws:eks/nodeGroup:NodeGroup"), attachment])
    assert not late, f"{addon.urn} can be created before {late}"


def secrets_read(resource: Resource) -> set[str]:
    return {str(e["valueFrom"]["secretKeyRef"]["name"]) for c in containers(resource) for e in c.get("env") or []
            if isinstance(e.get("valueFrom"), dict) and "secretKeyRef" in e["valueFrom"]}


@pytest.mark.parametrize("mode", ["rds", "incluster"])
def test_the_database_then_the_bootstrap_job_then_the_services_that_log_in_as_its_roles(
        dev_graph: Graph, incluster: Graph, mode: str) -> None:
    graph = dev_graph if mode == "rds" else incluster
    job = graph.one(JOB)
    database = [graph.one("aws:rds/instance:Instance")] if mode == "rds" else [
        graph.one("kubernetes:apps/v1:StatefulSet"),
        next(r for r in graph.of_type("kubernetes:security.istio.io/v1:AuthorizationPolicy")
             if r.inputs["metadata"]["name"] == "postgres-allow")]
    secrets = [r for r in graph.of_type("kubernetes:core/v1:Secret")
               if r.inputs["metadata"]["name"] in secrets_read(job)]
    assert len(secrets) == 4, "the Job reads the master Secret and one per service"
    late = not_before(graph, job, [*database, *secrets])
    assert not late, f"{job.urn} can start before {late}"
    services = [d for d in graph.of_type("kubernetes:apps/v1:Deployment")
                if any(name.startswith("shop-db-") for name in secrets_read(d))]
    assert len(services) == 3, "the three shop services each read their role's Secret"
    broken = {d.urn: late for d in services if (late := not_before(graph, d, [job]))}
    assert not broken, f"Deployments that can start before their roles exist: {broken}"


# --- Images before the workloads that pull them (active once the program builds images) ---------------------------

def image_refs(image: Resource) -> set[str]:
    """The references a built Image answers to: its tags, and its ref with any digest stripped."""
    refs = {str(t) for t in image.inputs.get("tags") or []}
    for key in ("ref", "digest"):
        value = image.outputs.get(key)
        if isinstance(value, str) and value:
            refs |= {value, value.split("@", 1)[0]}
    return refs


def images_not_before_workloads(graph: Graph) -> tuple[int, list[str]]:
    """(workload containers that pull a built Image, the ones that can start before that Image is pushed)."""
    images = graph.of_type(IMAGE)
    pulled, broken = 0, []
    for workload in (r for r in graph.resources if r.type in WORKLOADS):
        for container in containers(workload):
            building = [i for i in images if str(container.get("image")) in image_refs(i)]
            pulled += bool(building)
            broken += [f"{workload.urn} pulls {container.get('image')} before {urn}"
                       for urn in not_before(graph, workload, building)]
    return pulled, broken


def test_workloads_come_after_the_images_they_pull(dev_graph: Graph) -> None:
    if not dev_graph.of_type(IMAGE):
        pytest.skip(f"the program builds no {IMAGE} yet: nothing to order")
    pulled, broken = images_not_before_workloads(dev_graph)
    assert pulled, f"{IMAGE}s exist but no workload pulls any of their tags: this check's matching needs updating"
    assert not broken, broken


def _resource(urn: str, type_: str, *, inputs: dict[str, object] | None = None, deps: tuple[str, ...] = (),
              outputs: dict[str, object] | None = None) -> Resource:
    return Resource(urn=urn, type=type_, name=urn, inputs=inputs or {}, outputs=outputs or {}, id=urn, parent=None,
                    custom=True, provider=None, dependencies=list(deps))


def test_the_image_check_finds_a_workload_that_does_not_wait_for_its_image() -> None:
    tag = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/serverless-mesh-dev/inventory:1.0.0"
    image = _resource("img", IMAGE, inputs={"tags": [tag]}, outputs={"ref": f"{tag}@sha256:abc"})
    pod = {"spec": {"template": {"spec": {"containers": [{"name": "inventory", "image": tag}]}}}}
    waiting = _resource("ok", WORKLOADS[0], inputs=pod, deps=("img",))
    racing = _resource("racing", WORKLOADS[0], inputs=pod)
    graph = Graph(resources=[image, waiting, racing], exports={}, region="eu-west-1")
    assert images_not_before_workloads(graph) == (2, [f"racing pulls {tag} before img"])

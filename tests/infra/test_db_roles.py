"""The database roles under the mocks: a Secret and a role per service, the bootstrap Job that alone reads the
master Secret, and what Kubernetes would refuse of a Job or a Secret."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from infra.db_bootstrap import CREDENTIALS_ANNOTATION, credentials_checksum
from services.common.dbroles import BOOTSTRAP_MODULE, SERVICE_ROLES, password_env, role_name
from sim.capture import Graph, Resource
from sim.rules import CloudRejection, check
from tests.infra.test_shop import DB_PASSWORD, DEPLOYMENT, K8S_SECRET, env_of, k8s_named, paths_holding, shop_graph

JOB = "kubernetes:batch/v1:Job"
PASSWORD = "random:index/randomPassword:RandomPassword"


@pytest.fixture(scope="module")
def graph() -> Graph:
    return shop_graph()


@pytest.fixture(scope="module")
def incluster() -> Graph:
    return shop_graph(databaseMode="incluster")


def job(graph: Graph) -> Resource:
    return graph.one(JOB)


def job_container(graph: Graph) -> dict[str, Any]:
    [container] = job(graph).inputs["spec"]["template"]["spec"]["containers"]
    return dict(container)


def secret_refs(resource: Resource) -> set[str]:
    pod = resource.inputs["spec"]["template"]["spec"]
    return {e["valueFrom"]["secretKeyRef"]["name"] for c in pod["containers"] for e in c.get("env") or []
            if "secretKeyRef" in (e.get("valueFrom") or {})}


def test_each_service_has_a_secret_with_its_own_role_and_a_generated_password(graph: Graph) -> None:
    passwords = {r.name: r for r in graph.of_type(PASSWORD)}
    assert len(passwords) == len(SERVICE_ROLES)
    seen = set()
    for svc in SERVICE_ROLES:
        secret = k8s_named(graph, K8S_SECRET, f"shop-db-{svc}")
        data = secret.inputs["stringData"]
        assert data["username"] == role_name("shop", svc) == f"shop_{svc}"
        password = passwords[f"shop-services-db-roles-{svc}-password"]
        assert password.inputs["length"] >= 32 and data["password"] == password.outputs["result"]
        seen.add(data["password"])
    assert len(seen) == len(SERVICE_ROLES) and DB_PASSWORD not in seen


@pytest.mark.parametrize("mode", ["rds", "incluster"])
def test_only_the_job_and_the_server_read_the_master_secret_and_each_service_only_its_own(
        graph: Graph, incluster: Graph, mode: str) -> None:
    g = graph if mode == "rds" else incluster
    readers = {r.name: secret_refs(r) for r in g.resources
               if r.type in (DEPLOYMENT, JOB, "kubernetes:apps/v1:StatefulSet") and "shop" in r.name}
    master = {name for name, refs in readers.items() if "shop-db" in refs}
    expected = {job(g).name} | ({"shop-services-db-statefulset"} if mode == "incluster" else set())
    assert master == expected
    for svc in SERVICE_ROLES:
        assert readers[f"shop-services-{svc}"] == {f"shop-db-{svc}"}
    # The master password itself sits in one Secret only (the services' Secrets hold generated ones).
    holders = [r.urn for r in g.resources if r.type == K8S_SECRET and paths_holding(r.inputs, DB_PASSWORD)]
    assert holders == [k8s_named(g, K8S_SECRET, "shop-db").urn]


def test_the_job_runs_the_bootstrap_with_the_masters_login_and_every_services_password(graph: Graph) -> None:
    container = job_container(graph)
    assert container["command"] == ["python", "-m", BOOTSTRAP_MODULE]
    env = env_of(container)
    assert env["DATABASE_USER"] == {"secretKeyRef": {"name": "shop-db", "key": "username"}}
    assert env["DATABASE_PASSWORD"] == {"secretKeyRef": {"name": "shop-db", "key": "password"}}
    for svc in SERVICE_ROLES:
        assert env[password_env(svc)] == {"secretKeyRef": {"name": f"shop-db-{svc}", "key": "password"}}
    assert env["DATABASE_NAME"] == "shop" and env["DATABASE_HOST"] == graph.one("aws:rds/instance:Instance").outputs[
        "address"]
    inventory = k8s_named(graph, DEPLOYMENT, "inventory-v1")
    assert container["image"] == inventory.inputs["spec"]["template"]["spec"]["containers"][0]["image"]


def test_the_job_completes_under_istio_and_is_replaced_not_patched(graph: Graph) -> None:
    j = job(graph)
    template = j.inputs["spec"]["template"]
    assert template["metadata"]["annotations"]["sidecar.istio.io/nativeSidecar"] == "true"
    assert template["spec"]["restartPolicy"] == "Never"
    assert template["spec"]["serviceAccountName"] == "db-bootstrap"
    assert "name" not in j.inputs["metadata"], "a fixed name would make a replacement delete the old Job first"
    assert "ttlSecondsAfterFinished" not in j.inputs["spec"]
    assert j.inputs["metadata"]["annotations"]["pulumi.com/replaceUnready"] == "true"


def test_a_rotated_password_changes_the_job_and_that_services_pods(graph: Graph) -> None:
    passwords = {svc: k8s_named(graph, K8S_SECRET, f"shop-db-{svc}").inputs["stringData"]["password"]
                 for svc in SERVICE_ROLES}
    annotations = job(graph).inputs["spec"]["template"]["metadata"]["annotations"]
    assert annotations[CREDENTIALS_ANNOTATION] == credentials_checksum(*passwords.values())
    for svc, password in passwords.items():
        pod = k8s_named(graph, DEPLOYMENT, f"{svc}-v1").inputs["spec"]["template"]["metadata"]
        assert pod["annotations"][CREDENTIALS_ANNOTATION] == credentials_checksum(password)
        assert password not in str(pod)
    assert credentials_checksum("a" * 32) != credentials_checksum("b" * 32)


# --- What Kubernetes refuses --------------------------------------------------------------------------------

def test_the_mock_refuses_a_job_kubernetes_would(graph: Graph) -> None:
    j = job(graph)
    check(j.type, j.name, j.inputs)
    template = j.inputs["spec"]["template"]
    always = {**j.inputs, "spec": {**j.inputs["spec"], "template": {
        **template, "spec": {**template["spec"], "restartPolicy": "Always"}}}}
    with pytest.raises(CloudRejection, match="must be Never or OnFailure"):
        check(j.type, j.name, always)
    with pytest.raises(CloudRejection, match=r"metadata\.name is fixed"):
        check(j.type, j.name, {**j.inputs, "metadata": {**j.inputs["metadata"], "name": "db-bootstrap"}})
    with pytest.raises(CloudRejection, match="backoffLimit"):
        check(j.type, j.name, {**j.inputs, "spec": {**j.inputs["spec"], "backoffLimit": -1}})
    with pytest.raises(CloudRejection, match="manualSelector"):
        check(j.type, j.name, {**j.inputs, "spec": {**j.inputs["spec"], "selector": {"matchLabels": {"a": "b"}}}})


def test_the_mock_refuses_secret_data_that_is_not_base64_or_too_big(graph: Graph) -> None:
    secret = k8s_named(graph, K8S_SECRET, "shop-db-product")
    check(secret.type, secret.name, {**secret.inputs, "data": {"ca": base64.b64encode(b"pem").decode()}})
    with pytest.raises(CloudRejection, match=r"data\.ca is not base64"):
        check(secret.type, secret.name, {**secret.inputs, "data": {"ca": "not base64!"}})
    with pytest.raises(CloudRejection, match="over the Secret limit"):
        check(secret.type, secret.name, {**secret.inputs, "stringData": {"big": "x" * (1024 * 1024 + 1)}})

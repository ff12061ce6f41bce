"""`__main__.py` composes the platform and the canary and exports what a user needs (the dev stack)."""

from __future__ import annotations

import json

from sim.capture import Graph


def test_main_exports_cluster_kubeconfig_ingress_weight_and_repositories(dev_graph: Graph) -> None:
    exports = dev_graph.exports
    cluster = dev_graph.one("aws:eks/cluster:Cluster")
    assert exports["clusterName"] == cluster.outputs["name"] == "serverless-mesh-dev"
    assert json.loads(exports["kubeconfig"])["clusters"][0]["cluster"]["server"] == cluster.outputs["endpoint"]
    assert exports["ingressHostname"].endswith(".elb.eu-west-1.amazonaws.com")
    assert exports["canaryWeight"] == 10
    assert exports["canaryNamespace"] == "canary"
    assert set(exports["ecrRepositories"]) == {"myapp", "inventory", "product", "notification"}
    assert exports["ecrRepositories"]["myapp"].endswith(".amazonaws.com/serverless-mesh-dev/myapp")


def test_main_deploys_the_canary_with_the_dev_weight(dev_graph: Graph) -> None:
    vs = dev_graph.one("kubernetes:networking.istio.io/v1:VirtualService", "canary-vs")
    split = next(r for r in vs.inputs["spec"]["http"] if r["name"] == "split")
    assert [d["weight"] for d in split["route"]] == [90, 10]
    assert {d.inputs["metadata"]["name"] for d in dev_graph.of_type("kubernetes:apps/v1:Deployment")} >= {
        "myapp-v1", "myapp-v2"}

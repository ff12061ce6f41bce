"""Network narrowing under mocks: IMDSv2 with hop limit 1 on the nodes; the internal NLB admits private subnets only."""

from __future__ import annotations

import pytest

from infra.node_access import source_ranges
from sim.capture import Graph
from sim.rules import CloudRejection, check
from tests.infra.platform_program import mesh_graph
from tests.infra.test_platform import EXISTING_KUBECONFIG, release

LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"


@pytest.fixture(scope="module")
def default() -> Graph:
    return mesh_graph()


def test_nodes_boot_from_a_template_that_keeps_pods_off_the_instance_metadata(default: Graph) -> None:
    template = default.one(LAUNCH_TEMPLATE)
    assert template.inputs["metadataOptions"] == {"httpEndpoint": "enabled", "httpTokens": "required",
                                                  "httpPutResponseHopLimit": 1}
    nodes = default.one("aws:eks/nodeGroup:NodeGroup")
    assert nodes.inputs["launchTemplate"] == {"id": template.id, "version": "1"}
    assert not any(k in template.inputs for k in ("instanceType", "imageId"))  # the node group owns those


def test_the_internal_ingress_admits_only_the_private_subnets(default: Graph) -> None:
    service = release(default, "gateway").inputs["values"]["service"]
    private = sorted(s.inputs["cidrBlock"] for s in default.of_type("aws:ec2/subnet:Subnet") if "-private-" in s.name)
    assert service["loadBalancerSourceRanges"] == private and len(private) == 2


def test_a_public_or_existing_clusters_ingress_is_not_narrowed() -> None:
    assert source_ranges(["10.0.0.0/18"], internal=False) == []
    existing = mesh_graph(kubeconfig=EXISTING_KUBECONFIG, ingressInternal=False)
    assert release(existing, "gateway").inputs["values"]["service"]["loadBalancerSourceRanges"] == []
    assert not existing.of_type(LAUNCH_TEMPLATE)


def test_a_hop_limit_ec2_would_refuse_is_rejected() -> None:
    with pytest.raises(CloudRejection, match=r"HopLimit must be 1\.\.64"):
        check(LAUNCH_TEMPLATE, "lt", {"metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 0}})

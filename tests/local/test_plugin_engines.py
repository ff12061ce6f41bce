"""How the twin's PostgreSQL, services and mesh engines read the graph (no process started: fast).

The graph is the dev stack's own, captured once under the mocks; a few tests change one resource to show that a
wiring mistake fails the deploy naming what is wrong.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path

import pytest

from local.canary import binomial_interval
from local.errors import DeployError
from local.mesh import MeshSpecs, canary_split, load_balancer_hostnames, plain_numbers
from local.postgres_engine import database_specs
from local.services import DEPLOYMENT, deployment_specs, service_module
from local.stack import capture_stack
from mesh.envoy import ListenerSpec, translate
from sim.capture import Graph, Resource


@cache
def _dev_graph(state: str) -> Graph:
    return capture_stack("dev", Path(state))


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory) -> Graph:
    return _dev_graph(str(tmp_path_factory.mktemp("graph-state")))


def _deployment(graph: Graph, name: str) -> Resource:
    return next(r for r in graph.of_type(DEPLOYMENT) if r.inputs["metadata"]["name"] == name)


def _with(graph: Graph, resource: Resource, replacement: Resource) -> Graph:
    return Graph([replacement if r is resource else r for r in graph.resources], graph.exports, graph.region)


def test_database_comes_from_the_rds_instance_with_the_stack_secret_as_password(graph: Graph) -> None:
    (spec,) = database_specs(graph)
    rds = graph.one("aws:rds/instance:Instance")
    assert (spec.name, spec.user, spec.port) == ("shop", "shop", 5432)
    assert spec.password == rds.inputs["password"] and len(spec.password) >= 16
    assert spec.hosts == (rds.outputs["address"],)


def test_service_env_resolves_the_secret_and_translates_the_database_pair(graph: Graph) -> None:
    rds = graph.one("aws:rds/instance:Instance")
    address = rds.outputs["address"]
    translations = {f"{address}:5432": "127.0.0.1:61234", address: "127.0.0.1"}
    specs = {s.name: s for s in deployment_specs(graph, translations)}
    inventory = specs["inventory-v1"]
    assert inventory.module == "services.inventory"
    assert inventory.env["DATABASE_HOST"] == "127.0.0.1" and inventory.env["DATABASE_PORT"] == "61234"
    # From its own role's Secret, via secretKeyRef: never the master's password.
    own = next(r for r in graph.of_type("kubernetes:core/v1:Secret")
               if r.inputs["metadata"]["name"] == "shop-db-inventory").inputs["stringData"]
    assert inventory.env["DATABASE_PASSWORD"] == own["password"] != rds.inputs["password"]
    assert inventory.env["DATABASE_USER"] == "shop_inventory"
    assert inventory.ready_path == "/ready"
    assert inventory.labels == {"app": "inventory", "version": "v1"}
    assert specs["myapp-v1"].env["VERSION"] == "1.0.0" and specs["myapp-v2"].env["VERSION"] == "2.0.0"


def test_a_secret_key_missing_from_the_graph_fails_naming_deployment_and_secret(graph: Graph) -> None:
    res = _deployment(graph, "inventory-v1")
    broken = copy.deepcopy(res)
    container = broken.inputs["spec"]["template"]["spec"]["containers"][0]
    for entry in container["env"]:
        if entry["name"] == "DATABASE_PASSWORD":
            entry["valueFrom"]["secretKeyRef"]["key"] = "passwd"
    with pytest.raises(DeployError, match=r"inventory-v1.*DATABASE_PASSWORD.*shop-db-inventory/passwd"):
        deployment_specs(_with(graph, res, broken), {})


def test_an_image_naming_no_service_in_the_checkout_fails_the_deploy() -> None:
    assert service_module("123.dkr.ecr.eu-west-1.amazonaws.com/p-dev/myapp:2.0.0", "d") == "services.myapp"
    assert service_module("reg/x/inventory@sha256:abc", "d") == "services.inventory"
    with pytest.raises(DeployError, match=r"Deployment shop/ghost-v1: .*services/ghost/__main__.py"):
        service_module("reg/ghost:1.0.0", "Deployment shop/ghost-v1")


def test_replicas_zero_is_read_as_zero(graph: Graph) -> None:
    res = _deployment(graph, "myapp-v1")
    scaled = copy.deepcopy(res)
    scaled.inputs["spec"]["replicas"] = 0.0  # the engine hands every number over as a double
    specs = {s.name: s for s in deployment_specs(_with(graph, res, scaled), {})}
    assert specs["myapp-v1"].replicas == 0 and specs["myapp-v2"].replicas == 1


def test_mesh_specs_translate_to_envoy_with_the_canary_weights(graph: Graph) -> None:
    specs = MeshSpecs.from_graph(graph)
    assert specs.gateway == "istio-ingress/ingress"
    canary = specs.canary()
    assert canary is not None and canary["metadata"]["name"] == "myapp-vs"
    host, split = canary_split(canary, [({"app": "myapp", "version": "v2"}, {"VERSION": "2.0.0"})],
                               specs.destination_rules)
    assert host == "myapp-service.canary.svc.cluster.local"
    assert [(s.subset, s.weight, s.versions) for s in split] == [("v1", 90, ()), ("v2", 10, ("2.0.0",))]
    listener = ListenerSpec(name="canary", port=1, gateway=specs.gateway, virtual_services=("canary/myapp-vs",),
                            default_host=host)
    envoy = translate(specs.virtual_services, specs.destination_rules, {}, [listener])
    routes = envoy.route_configs[0]["virtual_hosts"][0]["routes"]
    weighted = routes[-1]["route"]["weighted_clusters"]["clusters"]
    assert [(c["name"], c["weight"]) for c in weighted] == [(s.cluster, s.weight) for s in split]
    assert routes[0]["match"]["headers"][0]["name"] == "x-canary"


def test_the_ingress_load_balancer_hostname_is_found_in_the_order_functions_environment(graph: Graph) -> None:
    hostnames = load_balancer_hostnames(graph)
    assert len(hostnames) == 1
    (hostname,) = hostnames
    assert graph.exports["ingressHostname"] == hostname


def test_plain_numbers_turns_integral_doubles_back_into_ints() -> None:
    assert plain_numbers({"weight": 90.0, "t": 0.5, "l": [80.0]}) == {"weight": 90, "t": 0.5, "l": [80]}


def test_binomial_interval_holds_the_expected_count() -> None:
    lo, hi = binomial_interval(2000, 0.5)
    assert lo < 1000 < hi and hi - lo < 2 * 3.4 * 22.37

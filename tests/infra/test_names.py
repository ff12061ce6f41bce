"""Resource names: every child named after its parent, renames carried by aliases, physical names kept."""

from __future__ import annotations

import dataclasses
import json

import pytest

from infra import config, openapi
from infra.api import HttpApi
from infra.platform import Platform
from infra.shop import Shop
from infra.shop_functions import AUTHORIZER, HANDLERS
from infra.wiring import api_args, deployment_images, platform_args, shop_args
from sim.capture import Graph, capture
from tests.infra.conftest import TEST_SECRETS

FUNCTION = "aws:lambda/function:Function"
SHOP_FUNCTIONS = (*HANDLERS, AUTHORIZER)
LAMBDA_CHILDREN = ("logs", "role", "policy", "function")


def urn_name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def test_every_child_of_a_component_is_named_after_it(dev_graph: Graph) -> None:
    components = {r.urn for r in dev_graph.resources if not r.custom}
    for r in dev_graph.resources:
        if r.parent in components:
            assert r.name.startswith(f"{urn_name(r.parent)}-"), f"{r.urn} is not named after {r.parent}"


def test_the_shop_functions_keep_their_physical_names(dev_graph: Graph) -> None:
    for fn in SHOP_FUNCTIONS:
        function = dev_graph.one(FUNCTION, f"shop-functions-{fn}-function")
        assert function.inputs["name"] == f"serverless-mesh-dev-{fn}"
        logs = dev_graph.one("aws:cloudwatch/logGroup:LogGroup", f"shop-functions-{fn}-logs")
        assert logs.inputs["name"] == f"/aws/lambda/serverless-mesh-dev-{fn}"
        role = dev_graph.one("aws:iam/role:Role", f"shop-functions-{fn}-role")
        assert role.inputs["description"] == f"Runs the {fn} function"


def test_todo_functions_keep_their_names(dev_graph: Graph) -> None:
    names = {r.name for r in dev_graph.of_type(FUNCTION) if r.parent and urn_name(r.parent).startswith("todos-")}
    assert names == {f"todos-{op}-function" for op in ("list", "get", "create", "update", "delete")}


def test_renamed_shop_functions_and_their_children_alias_their_old_names(
        sent_aliases: dict[str, list[str]]) -> None:
    aliases = sent_aliases
    capture(shop_program, config.stack_config_values("dev", secrets=TEST_SECRETS), stack="dev")
    for fn in SHOP_FUNCTIONS:
        assert any(f'"{fn}"' in a for a in aliases[f"shop-functions-{fn}"]), aliases[f"shop-functions-{fn}"]
        for role in LAMBDA_CHILDREN:
            child = f"shop-functions-{fn}-{role}"
            assert any(f'"{fn}-{role}"' in a for a in aliases[child]), (child, aliases[child])
    assert not aliases["shop-functions-users"], "children that kept their names need no alias"


def shop_program(second: bool = False) -> None:
    cfg, secrets = config.load()
    platform = Platform("platform", platform_args(cfg))
    images = deployment_images("containers", cfg, platform)
    first = Shop("shop", shop_args(cfg, secrets, platform.facts, images), platform.in_cluster())
    functions = dict(first.functions)
    if second:
        args = shop_args(cfg, secrets, platform.facts, images)
        args = dataclasses.replace(
            args,
            functions=dataclasses.replace(args.functions, function_prefix="shop2-"),
            services=dataclasses.replace(args.services,
                                         settings=dataclasses.replace(args.services.settings, namespace="shop2")))
        Shop("shop2", args, platform.in_cluster())
    HttpApi("api", api_args(cfg, shop_spec(), functions, authorizer=first.authorizer))


def shop_spec() -> dict[str, object]:
    spec = openapi.load_spec()
    spec["paths"] = {path: item for path, item in spec["paths"].items()
                     if any(isinstance(op, dict) and op.get("x-function") in HANDLERS for op in item.values())}
    return spec


def test_a_second_shop_collides_with_nothing() -> None:
    graph = capture(lambda: shop_program(second=True),
                    config.stack_config_values("dev", {"databaseMode": "incluster"}, secrets=TEST_SECRETS),
                    stack="dev")
    urns = [r.urn for r in graph.resources]
    assert len(urns) == len(set(urns)), sorted({u for u in urns if urns.count(u) > 1})
    physical = [f.inputs["name"] for f in graph.of_type(FUNCTION)]
    assert len(physical) == len(set(physical)) == 2 * len(SHOP_FUNCTIONS)
    assert "serverless-mesh-dev-shop2-orders-create" in physical
    namespaces = [json.dumps(r.inputs["metadata"]["name"]) for r in graph.of_type("kubernetes:core/v1:Namespace")]
    assert len(namespaces) == len(set(namespaces))


def test_a_kubernetes_component_built_without_the_platforms_provider_fails() -> None:
    from infra.canary import CanaryApp
    from infra.wiring import canary_args

    def program() -> None:
        cfg, _ = config.load()
        platform = Platform("platform", platform_args(cfg))
        images = deployment_images("containers", cfg, platform)
        CanaryApp("canary", canary_args(cfg, platform.facts.cluster, images))  # no platform.in_cluster()

    with pytest.raises(Exception, match="no Kubernetes provider"):
        capture(program, config.stack_config_values("dev", secrets=TEST_SECRETS), stack="dev")


def test_every_kubernetes_resource_is_bound_to_the_platforms_provider(dev_graph: Graph) -> None:
    provider = dev_graph.one("pulumi:providers:kubernetes")
    for r in dev_graph.resources:
        if r.custom and r.type.startswith("kubernetes:"):
            assert r.provider and r.provider.startswith(provider.urn), r.urn

"""The image build plan (`python -m services.build`): what is built, for which architecture, pushed where."""

from __future__ import annotations

from infra.config import parse_stack_config, stack_config_values
from services.build import build_plan, services_with_dockerfiles

REPOS = {s: f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/serverless-mesh-dev/{s}" for s in
         ("myapp", "inventory", "product", "notification")}


def config(**overrides: object):  # type: ignore[no-untyped-def]
    return parse_stack_config(stack_config_values("dev", overrides).project_raw())


def test_myapp_is_tagged_with_both_canary_versions_and_the_others_with_services_tag() -> None:
    plan = {b.service: b for b in build_plan(config(appV2Tag="2.1.0", servicesTag="3.0.0"), REPOS,
                                             services_with_dockerfiles())}
    assert plan["myapp"].refs() == [f"{REPOS['myapp']}:1.0.0", f"{REPOS['myapp']}:2.1.0"]
    assert plan["inventory"].refs() == [f"{REPOS['inventory']}:3.0.0"]
    assert all(b.dockerfile.exists() for b in plan.values())


def test_images_are_built_for_the_node_architecture() -> None:
    assert {b.platform for b in build_plan(config(), REPOS, ["myapp"])} == {"linux/arm64"}
    x86 = config(nodeArchitecture="x86_64", nodeInstanceType="m7i.large")
    assert {b.platform for b in build_plan(x86, REPOS, ["myapp"])} == {"linux/amd64"}


def test_image_registry_config_redirects_every_push() -> None:
    plan = build_plan(config(imageRegistry="ghcr.io/example"), {}, ["product"])
    assert plan[0].refs() == ["ghcr.io/example/product:1.0.0"]

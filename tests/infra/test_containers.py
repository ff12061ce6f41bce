"""Every service image built and pushed by `pulumi up` (infra/containers.py), pulled by digest, tagged by content."""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path
from typing import Any

import pulumi
import pytest

from infra.config import PROJECT_DIR, stack_config_values
from infra.containers import (
    ImageBuild,
    RegistryCredentials,
    ServiceImages,
    ServiceImagesArgs,
    content_hash,
    content_tag,
    dockerfile_path,
    dockerfile_sources,
    service_images,
)
from sim.capture import Graph, Resource, capture
from sim.rules import CloudRejection, check
from tests.infra.conftest import TEST_SECRETS, run_main
from tests.infra.platform_program import mesh_graph

IMAGE = "docker-build:index:Image"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
#: Child key -> (service, dev stack version).
DEV_BUILDS = {"myapp-v1": ("myapp", "1.0.0"), "myapp-v2": ("myapp", "2.0.0"), "inventory": ("inventory", "1.0.0"),
              "product": ("product", "1.0.0"), "notification": ("notification", "1.0.0")}


@pytest.fixture(scope="module")
def dev() -> Graph:
    return capture(run_main, stack_config_values("dev", secrets=TEST_SECRETS), stack="dev")


def container_image(deployment: Resource) -> str:
    return str(deployment.inputs["spec"]["template"]["spec"]["containers"][0]["image"])


# --- Pure: what a Dockerfile copies, and the content tag ---------------------------------------------------

def test_each_dockerfile_copies_the_shared_plumbing_and_its_own_service_only() -> None:
    for svc in service_images():
        sources = dockerfile_sources((PROJECT_DIR / dockerfile_path(svc)).read_text())
        assert sources == tuple(sorted(("services/requirements.txt", "services/__init__.py", "services/common",
                                        f"services/{svc}"))), svc


def test_dockerfile_sources_skip_other_stages_and_flags_and_read_both_forms() -> None:
    text = """# syntax=docker/dockerfile:1
FROM python:3.12-slim AS build
COPY --chown=10001:10001 ./a.txt \\
     b/ /app/
COPY --from=build /root/.cache /cache
ADD ["c d.txt", "/app/"]
RUN echo COPY x y
"""
    assert dockerfile_sources(text) == ("a.txt", "b", "c d.txt")


def test_each_dockerignore_lets_in_exactly_what_its_dockerfile_copies_and_no_bytecode() -> None:
    for svc in service_images():
        lines = [line.strip() for line in (PROJECT_DIR / f"{dockerfile_path(svc)}.dockerignore").read_text()
                 .splitlines() if line.strip() and not line.startswith("#")]
        assert lines[0] == "*", svc
        allowed = tuple(sorted(line[1:] for line in lines if line.startswith("!")))
        assert allowed == dockerfile_sources((PROJECT_DIR / dockerfile_path(svc)).read_text()), svc
        assert {"**/__pycache__", "**/*.pyc"} <= set(lines), svc
        # Exclusions after the allow-list, so they win inside the allowed folders.
        assert lines.index("**/__pycache__") > max(i for i, line in enumerate(lines) if line.startswith("!"))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of what the images are built from, plus a file no image copies."""
    (tmp_path / "services").mkdir()
    for item in ("requirements.txt", "__init__.py", "common", "myapp", "inventory"):
        source = PROJECT_DIR / "services" / item
        target = tmp_path / "services" / item
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    (tmp_path / "README.md").write_text("docs\n")
    return tmp_path


def tag_of(root: Path, svc: str = "myapp", platform: str = "linux/arm64") -> str:
    return content_tag("1.0.0", content_hash(root, dockerfile_path(svc), platform))


def test_an_unchanged_tree_gives_the_same_tag(tree: Path) -> None:
    assert re.fullmatch(r"1\.0\.0-[0-9a-f]{12}", tag_of(tree))
    assert tag_of(tree) == tag_of(tree)


@pytest.mark.parametrize("path", ["services/myapp/main.py", "services/common/app.py", "services/requirements.txt",
                                  "services/__init__.py", "services/myapp/Dockerfile"])
def test_a_change_in_anything_the_dockerfile_copies_gives_a_new_tag(tree: Path, path: str) -> None:
    before = tag_of(tree)
    with (tree / path).open("a") as f:
        f.write("\n# changed\n")
    assert tag_of(tree) != before


def test_a_new_file_in_the_service_gives_a_new_tag(tree: Path) -> None:
    before = tag_of(tree)
    (tree / "services/myapp/extra.py").write_text("X = 1\n")
    assert tag_of(tree) != before


def test_a_mode_change_gives_a_new_tag_as_it_changes_the_providers_context_hash(tree: Path) -> None:
    before = tag_of(tree)
    (tree / "services/myapp/main.py").chmod(0o755)
    assert tag_of(tree) != before


def test_changes_nothing_copies_keep_the_tag(tree: Path) -> None:
    before = tag_of(tree)
    (tree / "README.md").write_text("other docs\n")
    with (tree / "services/inventory/main.py").open("a") as f:
        f.write("\n# another service\n")
    (tree / "services/myapp/__pycache__").mkdir()
    (tree / "services/myapp/__pycache__/main.cpython-312.pyc").write_bytes(b"\x00bytecode")
    (tree / "services/common/stale.pyc").write_bytes(b"\x00")
    assert tag_of(tree) == before


def test_the_platform_is_part_of_the_tag(tree: Path) -> None:
    assert tag_of(tree, platform="linux/arm64") != tag_of(tree, platform="linux/amd64")


def test_a_copied_path_that_does_not_exist_fails_naming_it(tree: Path) -> None:
    shutil.rmtree(tree / "services/common")
    with pytest.raises(FileNotFoundError, match="services/common"):
        tag_of(tree)


def test_a_tag_over_dockers_128_characters_is_refused() -> None:
    assert len(content_tag("v" * 115, "0" * 64)) == 128
    with pytest.raises(ValueError, match="128"):
        content_tag("v" * 116, "0" * 64)


# --- The graph: one Image per build, what it builds, where it pushes ---------------------------------------

def test_every_service_has_one_image_built_from_the_root_with_its_dockerfile_for_the_nodes(dev: Graph) -> None:
    images = {r.name: r for r in dev.of_type(IMAGE)}
    assert set(images) == {f"containers-{key}" for key in DEV_BUILDS}
    component = dev.one("serverless-mesh:containers:ServiceImages", "containers")
    for key, (svc, version) in DEV_BUILDS.items():
        image = images[f"containers-{key}"]
        assert image.parent == component.urn, image.urn
        assert image.inputs["context"] == {"location": "."}
        assert image.inputs["dockerfile"] == {"location": f"services/{svc}/Dockerfile"}
        assert image.inputs["platforms"] == ["linux/arm64"]
        assert image.inputs["push"] is True
        assert image.inputs["buildOnPreview"] is False, "`pulumi preview` must not need Docker"
        repo = dev.one("aws:ecr/repository:Repository", f"platform-ecr-{svc}").outputs["repositoryUrl"]
        digest = content_hash(PROJECT_DIR, f"services/{svc}/Dockerfile", "linux/arm64")
        assert image.inputs["tags"] == [f"{repo}:{content_tag(version, digest)}"]


def test_images_push_with_the_ecr_token_for_the_repositories_host_kept_secret(dev: Graph) -> None:
    for image in dev.of_type(IMAGE):
        assert image.inputs["registries"] == [{"address": REGISTRY, "username": "AWS",
                                               "password": image.inputs["registries"][0]["password"]}]
        assert image.inputs["registries"][0]["password"].startswith("mock-ecr-password-")
        assert any(p.startswith("registries") for p in image.secret_paths), image.urn


def test_x86_nodes_get_amd64_images() -> None:
    graph = mesh_graph(nodeArchitecture="x86_64", nodeInstanceType="m7i.large")
    assert {tuple(r.inputs["platforms"]) for r in graph.of_type(IMAGE)} == {("linux/amd64",)}


def test_myapp_versions_are_two_builds_of_the_same_code_tagged_by_their_version(dev: Graph) -> None:
    v1, v2 = (dev.one(IMAGE, f"containers-myapp-{v}").inputs["tags"][0] for v in ("v1", "v2"))
    assert v1.split(":")[-1].startswith("1.0.0-") and v2.split(":")[-1].startswith("2.0.0-")
    assert v1.rsplit("-", 1)[1] == v2.rsplit("-", 1)[1], "same code, same content hash"


def test_every_deployment_runs_its_image_by_digest_and_waits_for_it(dev: Graph) -> None:
    deployments = dev.of_type(DEPLOYMENT)
    assert len(deployments) == 5
    for deployment in deployments:
        running = container_image(deployment)
        pushed = [i for i in dev.of_type(IMAGE) if i.outputs["ref"] == running]
        assert len(pushed) == 1, f"{deployment.urn} runs {running}, which no Image pushed"
        assert re.fullmatch(rf"{re.escape(pushed[0].inputs['tags'][0])}@sha256:[0-9a-f]{{64}}", running)
        assert pushed[0].urn in deployment.dependencies, f"{deployment.urn} does not wait for its image"


def test_image_registry_builds_nothing_and_runs_the_prebuilt_images(program_graph: Any) -> None:
    graph = program_graph({"imageRegistry": "ghcr.io/example"})
    assert graph.of_type(IMAGE) == [] and graph.of_type("aws:ecr/repository:Repository") == []
    assert graph.of_type("serverless-mesh:containers:ServiceImages") == []
    images = {d.inputs["metadata"]["name"]: container_image(d) for d in graph.of_type(DEPLOYMENT)}
    assert images == {"myapp-v1": "ghcr.io/example/myapp:1.0.0", "myapp-v2": "ghcr.io/example/myapp:2.0.0",
                      "inventory-v1": "ghcr.io/example/inventory:1.0.0",
                      "product-v1": "ghcr.io/example/product:1.0.0",
                      "notification-v1": "ghcr.io/example/notification:1.0.0"}


# --- A code change: new tag, new digest, the Deployment rolls ----------------------------------------------

def images_program(root: Path) -> Graph:
    def program() -> None:
        images = ServiceImages("containers", ServiceImagesArgs(
            builds={"myapp": ImageBuild(service="myapp", repository=f"{REGISTRY}/p-dev/myapp", version="1.0.0")},
            platform="linux/arm64",
            registry=RegistryCredentials(address=REGISTRY, username="AWS", password="pw"),
            root=root,
        ))
        pulumi.export("ref", images.images["myapp"].ref)
    return capture(program, stack_config_values("dev", secrets=TEST_SECRETS))


def test_a_code_change_gives_a_new_tag_and_digest_and_an_unchanged_tree_the_same(tree: Path) -> None:
    first, again = images_program(tree).exports["ref"], images_program(tree).exports["ref"]
    assert first == again
    (tree / "services/myapp/main.py").write_text("changed = True\n")
    changed = images_program(tree).exports["ref"]
    assert changed.split("@")[0] != first.split("@")[0] and changed.split("@")[1] != first.split("@")[1]


# --- What the provider would refuse -------------------------------------------------------------------------

def broken(dev: Graph) -> dict[str, Any]:
    return copy.deepcopy(dev.one(IMAGE, "containers-inventory").inputs)


def test_the_programs_images_pass_the_rules(dev: Graph) -> None:
    for image in dev.of_type(IMAGE):
        check(IMAGE, image.name, copy.deepcopy(image.inputs))


@pytest.mark.parametrize(("change", "message"), [
    (lambda i: i.update(tags=[]), "push needs at least one tag"),
    (lambda i: i.pop("tags"), "push needs at least one tag"),
    (lambda i: i.update(tags=["inventory:1.0.0"]), "is not <registry host>/<repository>:<tag>"),
    (lambda i: i.update(tags=[i["tags"][0].rsplit(":", 1)[0]]), "is not <registry host>/<repository>:<tag>"),
    (lambda i: i.update(tags=[i["tags"][0] + "@sha256:" + "0" * 64]), "is not <registry host>/<repository>:<tag>"),
    (lambda i: i["registries"][0].update(address="999999999999.dkr.ecr.eu-west-1.amazonaws.com"),
     "matches no tag's host"),
    (lambda i: i.update(tags=["ghcr.io/example/inventory:1.0.0"]), "matches no tag's host"),
    (lambda i: i.update(platforms=["linux/386"]), "platform 'linux/386' is not one of"),
    (lambda i: i.update(platforms=["linux/arm64", "windows/amd64"]), "platform 'windows/amd64'"),
    (lambda i: i.update(dockerfile={"location": "services/ghost/Dockerfile"}), "no such file"),
    (lambda i: i.update(context={"location": "no-such-dir"}), "not a valid directory"),
])
def test_the_mock_rejects_what_the_provider_would(dev: Graph, change: Any, message: str) -> None:
    inputs = broken(dev)
    change(inputs)
    with pytest.raises(CloudRejection, match=re.escape(message)):
        check(IMAGE, "containers-inventory", inputs)


def test_a_tag_whose_host_has_no_credentials_is_refused_when_pushing(dev: Graph) -> None:
    inputs = broken(dev)
    inputs["tags"].append("ghcr.io/example/inventory:1.0.0")
    with pytest.raises(CloudRejection, match=re.escape("'ghcr.io' has no credentials")):
        check(IMAGE, "containers-inventory", inputs)


def test_the_registry_address_may_be_a_repository_url_as_the_provider_reduces_it_to_its_host(dev: Graph) -> None:
    inputs = broken(dev)
    inputs["registries"][0]["address"] = "https://" + inputs["tags"][0].rsplit(":", 1)[0]
    check(IMAGE, "containers-inventory", inputs)


def test_the_mock_answers_a_digest_and_a_ref_like_the_provider(dev: Graph) -> None:
    for image in dev.of_type(IMAGE):
        digest = image.outputs["digest"]
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest) and image.id == digest
        assert image.outputs["ref"] == f"{image.inputs['tags'][0]}@{digest}"
        assert re.fullmatch(r"[0-9a-f]{64}", image.outputs["contextHash"])
    assert len({i.outputs["digest"] for i in dev.of_type(IMAGE)}) == len(DEV_BUILDS)

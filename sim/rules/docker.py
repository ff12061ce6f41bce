"""docker-build: what the provider's Check and a push would refuse for an `Image`.

Paths resolve against the project directory, where `pulumi up` runs the provider. Platforms are the two the node
groups can run (`nodeArchitecture`).
"""

from __future__ import annotations

import re
from typing import Any

from infra.config import PROJECT_DIR
from sim.rules.core import CloudRejection, revealed, rule

IMAGE_PLATFORMS = {"linux/arm64", "linux/amd64"}
# Docker's reference grammar, restricted to a fully qualified, tagged name: `<registry host>/<path>:<tag>`.
_HOST_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_REGISTRY_HOST = rf"(?:localhost|{_HOST_LABEL}(?:\.{_HOST_LABEL})+)(?::\d+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_QUALIFIED_TAG = re.compile(rf"^(?P<host>{_REGISTRY_HOST})/{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
                            r":[\w][\w.-]{0,127}$")


def _registry_address(address: str) -> str:
    """The host a registry entry authenticates (the provider's `credentials.ConvertToHostname`)."""
    return address.removeprefix("https://").removeprefix("http://").split("/", 1)[0]


def _check_sources(inputs: dict[str, Any]) -> None:
    context = str((inputs.get("context") or {}).get("location") or ".")
    if not (PROJECT_DIR / context).is_dir():
        raise CloudRejection(f"context.location {context!r}: not a valid directory or URL")
    dockerfile = inputs.get("dockerfile") or {}
    location = str(dockerfile.get("location") or ("" if dockerfile.get("inline") else f"{context}/Dockerfile"))
    if location and not (PROJECT_DIR / location).is_file():
        raise CloudRejection(f"dockerfile.location {location!r}: no such file")


def _tag_hosts(inputs: dict[str, Any]) -> set[str]:
    tags = [str(tag) for tag in inputs.get("tags") or []]
    if inputs.get("push") and not tags:
        raise CloudRejection("push needs at least one tag (buildx: tag is needed when pushing to registry)")
    hosts = set()
    for tag in tags:
        match = _QUALIFIED_TAG.match(tag)
        if not match:
            raise CloudRejection(f"tag {tag!r} is not <registry host>/<repository>:<tag>")
        hosts.add(match["host"])
    return hosts


@rule("docker-build:index:Image")
def _docker_image(inputs: dict[str, Any]) -> None:
    _check_sources(inputs)
    for platform in inputs.get("platforms") or []:
        if platform not in IMAGE_PLATFORMS:
            raise CloudRejection(f"platform {platform!r} is not one of {sorted(IMAGE_PLATFORMS)} (the nodes')")
    hosts = _tag_hosts(inputs)
    # The password is a secret, so the engine hands the list (or each entry) over wrapped.
    registries = [revealed(r) for r in revealed(inputs.get("registries")) or []]
    addresses = {_registry_address(str(revealed(r.get("address")) or "")) for r in registries}
    stray = sorted(addresses - hosts)
    if stray:
        raise CloudRejection(f"registry address {stray[0]!r} matches no tag's host {sorted(hosts)}")
    uncredentialed = sorted(hosts - addresses) if inputs.get("push") and addresses else []
    if uncredentialed:
        raise CloudRejection(f"tag host {uncredentialed[0]!r} has no credentials in registries (the push would "
                             "be denied)")

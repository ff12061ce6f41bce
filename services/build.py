"""Build every service image for the nodes' architecture and push it where the stack's Deployments pull from.

    python -m services.build --stack dev            # build and push what is missing
    python -m services.build --stack dev --dry-run  # print the commands only

Tags and architecture come from the stack config (read with the same loader as the program: `appV1Tag`,
`appV2Tag` for myapp, `servicesTag` for the others, `nodeArchitecture`); repositories from the stack's
`ecrRepositories` output, or `<imageRegistry>/<service>` when `imageRegistry` is set. The ECR repositories are
IMMUTABLE (a tag is a version), so a tag that already exists is skipped rather than overwritten.
Needs docker with buildx, and the aws and pulumi CLIs for ECR. Never run by the tests.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from infra.config import StackConfig, parse_stack_config, stack_config_values

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("services.build")

DOCKER_PLATFORMS = {"arm64": "linux/arm64", "x86_64": "linux/amd64"}


@dataclass(frozen=True)
class ImageBuild:
    service: str
    repository: str
    tags: tuple[str, ...]
    platform: str

    @property
    def dockerfile(self) -> Path:
        return ROOT / "services" / self.service / "Dockerfile"

    def refs(self) -> list[str]:
        return [f"{self.repository}:{tag}" for tag in self.tags]


def services_with_dockerfiles() -> list[str]:
    return sorted(p.parent.name for p in (ROOT / "services").glob("*/Dockerfile"))


def service_tags(cfg: StackConfig, service: str) -> tuple[str, ...]:
    """myapp runs two versions of the same code (VERSION differs by Deployment); the others one tag."""
    if service == "myapp":
        return (cfg.app_v1_tag, cfg.app_v2_tag)
    return (cfg.services_tag,)


def build_plan(cfg: StackConfig, repositories: Mapping[str, str], services: Sequence[str]) -> list[ImageBuild]:
    """What to build: one image per service, tagged for every version the stack deploys."""
    platform = DOCKER_PLATFORMS[cfg.node_architecture]
    plan = []
    for service in services:
        if cfg.image_registry:
            repository = f"{cfg.image_registry.rstrip('/')}/{service}"
        elif service in repositories:
            repository = repositories[service]
        else:
            raise SystemExit(f"no repository for {service}: run `pulumi up` first (ecrRepositories output)")
        plan.append(ImageBuild(service, repository, service_tags(cfg, service), platform))
    return plan


def _run(cmd: Sequence[str], *, dry_run: bool, input_text: str | None = None) -> str:
    log.info("$ %s", shlex.join(cmd))
    if dry_run:
        return ""
    return subprocess.run(cmd, check=True, text=True, capture_output=True, input=input_text, cwd=ROOT).stdout


def stack_repositories(stack: str) -> dict[str, str]:
    out = subprocess.run(["pulumi", "stack", "output", "ecrRepositories", "--json", "--stack", stack],
                         check=True, text=True, capture_output=True, cwd=ROOT).stdout
    return dict(json.loads(out or "{}"))


def ecr_tag_exists(repository_url: str, tag: str, region: str) -> bool:
    name = repository_url.split("/", 1)[1]
    result = subprocess.run(["aws", "ecr", "describe-images", "--region", region, "--repository-name", name,
                             "--image-ids", f"imageTag={tag}"], text=True, capture_output=True)
    return result.returncode == 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("services", nargs="*", help="default: every service with a Dockerfile")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    raw = stack_config_values(args.stack).project_raw()
    cfg = parse_stack_config(raw, stack=args.stack)
    use_ecr = not cfg.image_registry
    repositories = stack_repositories(args.stack) if use_ecr and not args.dry_run else {
        s: f"<ecr>/{s}" for s in services_with_dockerfiles()}
    plan = build_plan(cfg, repositories, args.services or services_with_dockerfiles())

    if use_ecr and not args.dry_run:
        registries = {build.repository.split("/", 1)[0] for build in plan}
        password = _run(["aws", "ecr", "get-login-password", "--region", cfg.region], dry_run=False)
        for registry in sorted(registries):
            _run(["docker", "login", "--username", "AWS", "--password-stdin", registry], dry_run=False,
                 input_text=password)
    for build in plan:
        tags = [t for t in build.tags if args.dry_run or not use_ecr or
                not ecr_tag_exists(build.repository, t, cfg.region)]
        if not tags:
            log.info("%s: %s already pushed", build.service, ", ".join(build.tags))
            continue
        cmd = ["docker", "buildx", "build", "--platform", build.platform, "--file", str(build.dockerfile),
               "--provenance=false", "--push"]
        for tag in tags:
            cmd += ["--tag", f"{build.repository}:{tag}"]
        _run([*cmd, str(ROOT)], dry_run=args.dry_run)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

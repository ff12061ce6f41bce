"""`ServiceImages`: every service image built and pushed by the same `pulumi up` that deploys it.

Each image is a `docker-build:index:Image` built from the repository root with `services/<name>/Dockerfile`, for
the nodes' platform, pushed to the stack's ECR repository with credentials from ECR's authorization token.
Deployments pull it by digest (the Image's `ref` output, `repo:tag@sha256:...`), so a pod runs exactly the
bytes this update pushed, and each Deployment waits for its Image.

The ECR repositories are IMMUTABLE: a pushed tag can never point at other bytes, so the provider must never push a
tag twice. It rebuilds whenever its inputs or its `contextHash` (the Dockerfile and the filtered build context:
contents, paths, modes) change; so the tag is `<version>-<hash12>` where the hash covers exactly that and the build
recipe (Dockerfile path, platform). An unchanged tree gives the same tag and no update; any change that makes the
provider rebuild also gives a new tag, a new digest, and a rollout. `services/<name>/Dockerfile.dockerignore`
narrows the context to what the Dockerfile copies, so an edit elsewhere in the repository (or the twin's
`__pycache__`) changes neither hash.

With `imageRegistry` set nothing is built: the user brings prebuilt `<imageRegistry>/<service>:<tag>` images.
Pure helpers (the Dockerfile's sources, the content hash, the tag) sit at module level and are tested on a tmp tree.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build

from infra.config import PROJECT_DIR
from infra.kube import image_ref

DOCKERFILE = "Dockerfile"
#: The nodes' architecture (`nodeArchitecture`) as a build platform.
PLATFORMS = {"arm64": "linux/arm64", "x86_64": "linux/amd64"}
#: Paths Python writes beside the sources when the twin or the tests run them; never part of an image
#: (each Dockerfile.dockerignore excludes them too, so the provider's contextHash ignores them as well).
IGNORED_PARTS = ("__pycache__",)
IGNORED_SUFFIXES = (".pyc", ".pyo")
HASH_LENGTH = 12
#: Docker's limit on a tag, which `<version>-<hash12>` must respect.
MAX_TAG_LENGTH = 128


# --- Pure helpers -----------------------------------------------------------------------------------------

def service_images(services_dir: Path = PROJECT_DIR / "services") -> tuple[str, ...]:
    """The services there are images of: every `services/<name>/Dockerfile` (the Dockerfiles are the one list;
    the platform makes a repository for each, and the shop and the canary pick theirs from it)."""
    return tuple(sorted(p.parent.name for p in services_dir.glob(f"*/{DOCKERFILE}")))


def dockerfile_path(service: str) -> str:
    """Relative to the project directory (where `pulumi up` runs the provider): an absolute path would differ per
    machine, change the Image's inputs, and rebuild an unchanged tree under the same (immutable) tag."""
    return f"services/{service}/{DOCKERFILE}"


def _instructions(text: str) -> Iterator[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        yield current
        current = ""
    if current:
        yield current


def dockerfile_sources(text: str) -> tuple[str, ...]:
    """The context paths a Dockerfile's COPY/ADD instructions read (sorted, deduplicated).

    `--from=` copies read another stage or image, not the context, and are skipped; other flags (`--chown`,
    `--chmod`, `--link`) are dropped. Both the shell and the JSON (exec) form are read.
    """
    sources: set[str] = set()
    for instruction in _instructions(text):
        keyword, _, rest = instruction.partition(" ")
        if keyword.upper() not in ("COPY", "ADD"):
            continue
        flags = []
        rest = rest.strip()
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            flags.append(flag)
            rest = rest.strip()
        if any(f.startswith("--from=") for f in flags):
            continue
        words = [str(w) for w in json.loads(rest)] if rest.startswith("[") else shlex.split(rest)
        if len(words) < 2:
            raise ValueError(f"{keyword} needs a source and a destination: {instruction!r}")
        sources.update(w.removeprefix("./").rstrip("/") for w in words[:-1])
    return tuple(sorted(sources))


def _ignored(relative: Path) -> bool:
    return any(part in IGNORED_PARTS for part in relative.parts) or relative.suffix in IGNORED_SUFFIXES


def _files(root: Path, source: str) -> list[Path]:
    path = root / source
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{source}: copied by the Dockerfile but not in {root}")
    return sorted(p for p in path.rglob("*") if p.is_file() and not _ignored(p.relative_to(root)))


def content_hash(root: Path, dockerfile: str, platform: str) -> str:
    """sha256 over the build recipe, the Dockerfile, and every file it copies (path, mode, bytes).

    The same inputs as the provider's contextHash (which hashes contents, paths and modes of the filtered context)
    plus the platform, so whatever makes the provider rebuild makes a new tag.
    """
    h = hashlib.sha256()
    h.update(json.dumps({"dockerfile": dockerfile, "platform": platform}, sort_keys=True).encode())
    text = (root / dockerfile).read_bytes()
    h.update(b"\0dockerfile\0" + text)
    for source in dockerfile_sources(text.decode()):
        for path in _files(root, source):
            relative = path.relative_to(root).as_posix()
            data = path.read_bytes()
            h.update(f"\0{relative}\0{path.stat().st_mode & 0o7777:o}\0{len(data)}\0".encode() + data)
    return h.hexdigest()


def content_tag(version: str, digest: str) -> str:
    """`<version>-<hash12>`: the version a person reads, and the content that makes it a new image."""
    tag = f"{version}-{digest[:HASH_LENGTH]}"
    if len(tag) > MAX_TAG_LENGTH:
        raise ValueError(f"image tag {tag!r} is longer than Docker's {MAX_TAG_LENGTH} characters")
    return tag


def registry_host(repository_url: str) -> str:
    """`<account>.dkr.ecr.<region>.amazonaws.com/<name>` -> its registry's address (what credentials are for)."""
    return repository_url.removeprefix("https://").split("/", 1)[0]


# --- Args -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ContainerImage:
    """What a container runs: the reference Kubernetes pulls, and the resource that pushes it (None: prebuilt)."""

    ref: pulumi.Input[str]
    pushed_by: pulumi.Resource | None = None

    @property
    def depends_on(self) -> list[pulumi.Resource]:
        return [self.pushed_by] if self.pushed_by is not None else []


@dataclass(frozen=True, kw_only=True)
class RegistryCredentials:
    address: pulumi.Input[str]
    """The registry's host, e.g. `123456789012.dkr.ecr.eu-west-1.amazonaws.com`."""
    username: pulumi.Input[str]
    password: pulumi.Input[str]


@dataclass(frozen=True, kw_only=True)
class ImageBuild:
    service: str
    """Builds `services/<service>` with its Dockerfile."""
    repository: pulumi.Input[str]
    """The repository URL the image is pushed to."""
    version: str
    """The tag's readable half (`appV1Tag`, `servicesTag`, ...)."""


@dataclass(frozen=True, kw_only=True)
class ServiceImagesArgs:
    builds: Mapping[str, ImageBuild]
    """Child key (`myapp-v1`, `inventory`, ...) -> what it builds; each key is one Image named `<name>-<key>`."""
    platform: str
    """`linux/arm64` or `linux/amd64`: the nodes' architecture."""
    registry: RegistryCredentials
    root: Path = field(default=PROJECT_DIR)
    """Where the Dockerfiles' sources are hashed from (the build context, the project directory)."""


# --- Component --------------------------------------------------------------------------------------------

class ServiceImages(pulumi.ComponentResource):
    """One pushed image per build, tagged by content; `images[key]` is what a Deployment runs."""

    refs: pulumi.Output[dict[str, str]]

    def __init__(self, name: str, args: ServiceImagesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-mesh:containers:ServiceImages", name, None, opts)
        self.args = args
        self.built = {key: self._create_image(f"{name}-{key}", build) for key, build in args.builds.items()}
        # `ref` is the Image's one tag with the pushed digest (`repo:tag@sha256:...`): the kubelet pulls by the digest
        # (exactly these bytes), and the tag keeps `kubectl describe` readable.
        self.images = {key: ContainerImage(ref=image.ref, pushed_by=image) for key, image in self.built.items()}
        self.refs = pulumi.Output.all(**{key: image.ref for key, image in self.built.items()})
        self.register_outputs({"refs": self.refs})

    def _create_image(self, resource_name: str, build: ImageBuild) -> docker_build.Image:
        args = self.args
        dockerfile = dockerfile_path(build.service)
        tag = content_tag(build.version, content_hash(args.root, dockerfile, args.platform))
        return docker_build.Image(
            resource_name,
            context=docker_build.BuildContextArgs(location="."),
            dockerfile=docker_build.DockerfileArgs(location=dockerfile),
            platforms=[docker_build.Platform(args.platform)],
            push=True,
            tags=[image_ref(build.repository, tag)],
            registries=[docker_build.RegistryArgs(address=args.registry.address, username=args.registry.username,
                                                  password=pulumi.Output.secret(args.registry.password))],
            # `pulumi preview` needs no Docker daemon (the provider still parses each Dockerfile).
            build_on_preview=False,
            # No cache_from/cache_to: a registry cache is one tag overwritten by every build, which the IMMUTABLE
            # repositories refuse; BuildKit's own cache on the deploying machine already reuses unchanged layers.
            opts=pulumi.ResourceOptions(parent=self),
        )


# --- Wiring -----------------------------------------------------------------------------------------------

def ecr_credentials(repository: aws.ecr.Repository) -> RegistryCredentials:
    """A 12-hour ECR token for the repository's registry (the provider ignores password changes when diffing)."""
    token = aws.ecr.get_authorization_token_output(registry_id=repository.registry_id)
    return RegistryCredentials(address=repository.repository_url.apply(registry_host),
                               username=token.user_name, password=pulumi.Output.secret(token.password))

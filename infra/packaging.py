"""What the cloud runs: function code archives and dependency layers.

Code archives hold only `functions/<group>` packages and `functions/common` (no tests, no caches, no boto3:
the runtime provides it). Dependencies go in Lambda layers built for python3.12 on arm64 from pinned
requirements with pip's cross-platform wheel download, cached under build/layers/ by the requirements' hash, so
a preview or a test never rebuilds or downloads them; under the unit-test mocks nothing is built at all.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pulumi
from pulumi.runtime import mocks as pulumi_mocks

from infra.config import PROJECT_DIR

FUNCTIONS_DIR = PROJECT_DIR / "functions"
BUILD_DIR = PROJECT_DIR / "build"
LAMBDA_PYTHON = "3.12"
LAMBDA_PLATFORM = "manylinux2014_aarch64"
_CODE_SUFFIXES = {".py", ".json", ".yaml"}


def _package_files(group: str) -> Iterable[Path]:
    root = FUNCTIONS_DIR / group
    if not (root / "__init__.py").exists():
        raise FileNotFoundError(f"functions/{group} is not a package")
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in _CODE_SUFFIXES and "__pycache__" not in path.parts:
            yield path


def code_archive(groups: Iterable[str]) -> pulumi.AssetArchive:
    """A zip of `functions/__init__.py`, `functions/common` and the given groups, paths kept for imports."""
    assets: dict[str, pulumi.Asset | pulumi.Archive] = {
        "functions/__init__.py": pulumi.FileAsset(str(FUNCTIONS_DIR / "__init__.py")),
    }
    for group in dict.fromkeys(["common", *groups]):
        for path in _package_files(group):
            assets[str(path.relative_to(PROJECT_DIR))] = pulumi.FileAsset(str(path))
    return pulumi.AssetArchive(assets)


def code_hash(groups: Iterable[str]) -> str:
    """Digest of the files `code_archive` packs (a change of any of them redeploys the function)."""
    digest = hashlib.sha256()
    for group in dict.fromkeys(["common", *groups]):
        for path in _package_files(group):
            digest.update(str(path.relative_to(PROJECT_DIR)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _under_mocks() -> bool:
    return isinstance(pulumi.runtime.settings.get_monitor(), pulumi_mocks.MockMonitor)


def layer_dir(requirements: Path) -> Path:
    """Where the layer for `requirements` lives: build/layers/<stem>-<hash of the pins and target>."""
    digest = hashlib.sha256(requirements.read_bytes() + f"{LAMBDA_PLATFORM}/{LAMBDA_PYTHON}".encode()).hexdigest()
    return BUILD_DIR / "layers" / f"{requirements.parent.name}-{requirements.stem}-{digest[:16]}"


def build_layer(requirements: Path) -> Path:
    """Install arm64/python3.12 wheels of `requirements` into <layer>/python (Lambda's layer layout)."""
    target = layer_dir(requirements)
    if (target / ".complete").exists():
        return target
    site = target / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--only-binary=:all:",
         "--platform", LAMBDA_PLATFORM, "--implementation", "cp", "--python-version", LAMBDA_PYTHON,
         "--target", str(site), "-r", str(requirements)],
        check=True,
    )
    (target / ".complete").write_text(requirements.read_text())
    return target


def layer_archive(requirements: Path) -> pulumi.FileArchive:
    """The layer's archive; built once per requirements hash, never under the unit-test mocks."""
    if not _under_mocks():
        build_layer(requirements)
    return pulumi.FileArchive(str(layer_dir(requirements)))


def dependency_layer(name: str, requirements: Path, *, description: str,
                     opts: pulumi.ResourceOptions | None = None) -> pulumi.CustomResource:
    """A Lambda layer version holding `requirements` for python3.12 on arm64."""
    import pulumi_aws as aws

    return aws.lambda_.LayerVersion(
        name,
        layer_name=f"{pulumi.get_project()}-{pulumi.get_stack()}-{name}",
        description=description,
        code=layer_archive(requirements),
        compatible_runtimes=[f"python{LAMBDA_PYTHON}"],
        compatible_architectures=["arm64"],
        opts=opts,
    )

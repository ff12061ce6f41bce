"""What the cloud runs: function code archives.

Code archives hold only `functions/<group>` packages and `functions/common` (no tests, no caches, no boto3:
the runtime provides it). Their dependencies come from Lambda layers (`infra.layers`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import pulumi

from infra.config import PROJECT_DIR

FUNCTIONS_DIR = PROJECT_DIR / "functions"
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

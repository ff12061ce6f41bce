"""What the cloud runs: function code archives.

Code archives hold only `functions/<group>` packages and `functions/common` (no tests, no caches, no boto3:
the runtime provides it), each module with its bytecode for the runtime (`infra.bytecode`: /var/task is read-only,
so a module without its `.pyc` is compiled on every cold start). Their dependencies come from Lambda layers
(`infra.layers`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pulumi

from infra import bytecode
from infra.config import PROJECT_DIR

#: The Lambda runtime's Python (`python3.12`): the functions' runtime, the layers' target, the bytecode's version.
LAMBDA_PYTHON = "3.12"
FUNCTIONS_DIR = PROJECT_DIR / "functions"
BYTECODE_ROOT = PROJECT_DIR / "build" / "bytecode"
# Where Lambda unpacks a function's code (its working directory, first on sys.path).
CODE_MOUNT = "/var/task"
_CODE_SUFFIXES = {".py", ".json", ".yaml"}


def _package_files(group: str) -> Iterable[Path]:
    root = FUNCTIONS_DIR / group
    if not (root / "__init__.py").exists():
        raise FileNotFoundError(f"functions/{group} is not a package")
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in _CODE_SUFFIXES and "__pycache__" not in path.parts:
            yield path


def _sources(groups: Iterable[str]) -> list[Path]:
    """Every file an archive of `groups` packs: `functions/__init__.py`, `functions/common`, the groups."""
    files = [FUNCTIONS_DIR / "__init__.py"]
    for group in dict.fromkeys(["common", *groups]):
        files.extend(_package_files(group))
    return files


def code_archive(groups: Iterable[str]) -> pulumi.AssetArchive:
    """A zip of `functions/__init__.py`, `functions/common` and the given groups, paths kept for imports, with
    every module's `.pyc` for the runtime beside it when this machine has the runtime's CPython."""
    sources = _sources(groups)
    assets: dict[str, pulumi.Asset | pulumi.Archive] = {
        str(path.relative_to(PROJECT_DIR)): pulumi.FileAsset(str(path)) for path in sources
    }
    compiled = compiled_tree(sources)
    if compiled is None:
        bytecode.warn_missing_compiler(LAMBDA_PYTHON)
    else:
        for pyc in sorted(compiled.rglob("*.pyc")):
            assets[str(pyc.relative_to(compiled))] = pulumi.FileAsset(str(pyc))
    return pulumi.AssetArchive(assets)


def code_hash(groups: Iterable[str]) -> str:
    """Digest of the files `code_archive` packs (a change of any of them redeploys the function)."""
    return _digest(_sources(groups))


def _digest(sources: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in sources:
        digest.update(str(path.relative_to(PROJECT_DIR)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def compiled_tree(sources: list[Path], build_root: Path = BYTECODE_ROOT) -> Path | None:
    """A folder holding `functions/...` with the `.py` files of `sources` and their unchecked-hash `.pyc` files,
    compiled once per content and compiler (the program runs on every preview); None without the runtime's CPython.
    """
    compiler = bytecode.find_compiler(LAMBDA_PYTHON)
    if compiler is None:
        return None
    key = hashlib.sha256(f"{_digest(sources)}\n{compiler.tag}".encode()).hexdigest()[:16]
    target = build_root / key
    if target.exists():
        return target
    build_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=build_root, prefix=f".{key}-"))
    try:
        for path in sources:
            copy = staging / path.relative_to(PROJECT_DIR)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, copy)
        bytecode.compile_tree(compiler, staging, runtime_path=CODE_MOUNT)
        try:
            os.rename(staging, target)  # atomic; a concurrent build of the same key may have won the race
        except OSError:
            if not target.exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target

"""Lambda dependency layers: locked, built for python3.12 on arm64, zipped byte for byte the same every time.

Each layer has a top-level requirements file (what we ask for) and beside it a lock (`<stem>.lock`: every
transitive pin with its hashes, resolved for the runtime by `make lock`). `build_layer` installs exactly the
lock's wheels for the python3.12 Lambda runtime (Amazon Linux 2023, glibc 2.34, aarch64) into `python/` and
writes a deterministic zip named after the hash of the lock and the target, so an unchanged lock is never
rebuilt and gives the same bytes, hence the same `source_code_hash`, hence no new layer version. `make layers`
and `pulumi up` (every run of the program, previews included) call the same function; the first call on a
machine builds, every later one finds the zip.

`python -m infra.layers build` builds every layer, `python -m infra.layers lock` regenerates every lock.
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

import pulumi
import pulumi_aws as aws

from infra import bytecode
from infra.config import PROJECT_DIR
from infra.packaging import FUNCTIONS_DIR, LAMBDA_PYTHON

BUILD_ROOT = PROJECT_DIR / "build" / "layers"

LAMBDA_IMPLEMENTATION = "cp"
LAMBDA_ABI = "cp312"
LAMBDA_ARCH = "aarch64"
# The python3.12 runtime runs on Amazon Linux 2023, whose glibc is 2.34: a wheel built for any glibc from
# manylinux2014's 2.17 up to 2.34 loads there, one built for a newer glibc does not.
LAMBDA_GLIBC = (2, 34)
OLDEST_GLIBC_MINOR = 17
# The runtime ships these (and the layer must not shadow them with other versions): never packaged.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer"})
# Part of the cache key: bump it when the zip's layout or normalisation below changes, so old zips are not reused.
_ZIP_LAYOUT = "python/ v2: unchecked-hash bytecode"
# The oldest timestamp a zip entry can hold: no build time leaks into the bytes.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_HASH_MISMATCH = "DO NOT MATCH THE HASHES"
# Where Lambda mounts a layer's `python/` folder (on sys.path in every python runtime).
LAYER_MOUNT = "/opt/python"


@dataclass(frozen=True)
class Layer:
    name: str
    """Prefix of the layer's zip in build/layers/."""
    requirements: Path
    """The top-level pins; `make lock` resolves them into `lock`."""

    @property
    def lock(self) -> Path:
        return self.requirements.with_suffix(".lock")


DEPS = Layer("deps", FUNCTIONS_DIR / "requirements.txt")
PILLOW = Layer("pillow", FUNCTIONS_DIR / "images" / "requirements-layer.txt")
LAYERS = (DEPS, PILLOW)


class LayerBuildError(RuntimeError):
    """A layer could not be built from its lock (pip's own message is kept)."""


# --- Target -------------------------------------------------------------------------------------------------

def platform_tags() -> tuple[str, ...]:
    """Every wheel platform tag the runtime loads, newest glibc first: pip takes the first tag a wheel matches,
    and does not widen `manylinux_2_34` to older glibcs by itself."""
    major, newest = LAMBDA_GLIBC
    tags = [f"manylinux_{major}_{minor}_{LAMBDA_ARCH}" for minor in range(newest, OLDEST_GLIBC_MINOR - 1, -1)]
    return (*tags, f"manylinux2014_{LAMBDA_ARCH}")


def resolver_platform() -> str:
    """The runtime as `uv pip compile --python-platform` names it."""
    major, minor = LAMBDA_GLIBC
    return f"{LAMBDA_ARCH}-manylinux_{major}_{minor}"


def runtime_compiler() -> bytecode.Compiler | None:
    """The CPython that compiles the runtime's bytecode, if this machine has one (`infra.bytecode`)."""
    return bytecode.find_compiler(LAMBDA_PYTHON)


def cache_key(lock_bytes: bytes) -> str:
    """What the zip's bytes are a function of: the lock, the target (interpreter, ABI, platforms), the layout,
    and the three tools that write them (pip lays out the dist-info, the runtime's CPython compiles the bytecode,
    zlib compresses). A machine that gains a CPython 3.12 builds the zip again, with bytecode."""
    compiler = runtime_compiler()
    target = "\n".join((_ZIP_LAYOUT, LAMBDA_IMPLEMENTATION, LAMBDA_PYTHON, LAMBDA_ABI, *platform_tags(),
                        f"pip {metadata.version('pip')}", f"bytecode {compiler.tag if compiler else 'none'}",
                        f"zlib {zlib.ZLIB_RUNTIME_VERSION}"))
    return hashlib.sha256(lock_bytes + b"\0" + target.encode()).hexdigest()


def zip_path(layer: Layer, build_root: Path = BUILD_ROOT) -> Path:
    """Where `layer`'s zip for its current lock lives (built or not)."""
    return build_root / f"{layer.name}-{cache_key(layer.lock.read_bytes())[:16]}.zip"


def locked_packages(lock: Path) -> dict[str, str]:
    """`{normalised name: version}` of every pin in a lock."""
    pins: dict[str, str] = {}
    for line in lock.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", line)
        if match:
            pins[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2]
    return pins


# --- Build --------------------------------------------------------------------------------------------------

def pip_command(lock: Path, site: Path, *, pip_cache: bool = True) -> list[str]:
    """Install exactly the lock's wheels, each checked against its hashes, for the runtime, into `site`."""
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--no-compile", "--no-deps", "--require-hashes", "--only-binary=:all:",
               "--implementation", LAMBDA_IMPLEMENTATION, "--python-version", LAMBDA_PYTHON, "--abi", LAMBDA_ABI]
    for tag in platform_tags():
        command += ["--platform", tag]
    if not pip_cache:
        command.append("--no-cache-dir")
    return [*command, "--target", str(site), "--requirement", str(lock)]


def build_layer(layer: Layer, *, build_root: Path = BUILD_ROOT, pip_cache: bool = True) -> Path:
    """The layer's zip, built once per lock and target; concurrent callers (xdist workers, captures) wait for the
    one that builds rather than racing it."""
    target = zip_path(layer, build_root)
    if target.exists():
        return target
    build_root.mkdir(parents=True, exist_ok=True)
    with _exclusive(build_root / f".{target.stem}.lock"):
        if target.exists():  # built by whoever held the lock before us
            return target
        _sweep_staging(build_root, target)
        with tempfile.TemporaryDirectory(dir=build_root, prefix=f".{target.stem}-") as tmp:
            site = Path(tmp) / "python"
            _install(layer.lock, site, pip_cache=pip_cache)
            _drop_scripts(site)
            compiler = runtime_compiler()
            if compiler:
                bytecode.compile_tree(compiler, site, runtime_path=LAYER_MOUNT)
            staged = Path(tmp) / target.name
            write_zip(Path(tmp), ["python"], staged)
            os.replace(staged, target)  # atomic: a reader sees no zip or the whole zip
    return target


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """An advisory lock on `path` for the duration of a `with` block (the kernel drops it if the process dies)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _sweep_staging(build_root: Path, target: Path) -> None:
    """Remove staging folders of `target` left by a build that was killed: only the lock holder stages it."""
    for stale in build_root.glob(f".{target.stem}-*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)


def _install(lock: Path, site: Path, *, pip_cache: bool) -> None:
    result = subprocess.run(pip_command(lock, site, pip_cache=pip_cache), capture_output=True, text=True,
                            check=False)
    if result.returncode == 0:
        return
    output = (result.stderr + result.stdout).strip()
    if _HASH_MISMATCH in output:
        raise LayerBuildError(f"{lock}: the downloaded wheels do not match the lock's hashes (a tampered download, "
                              f"or a lock edited by hand: regenerate it with `make lock`).\npip said:\n{output}")
    raise LayerBuildError(f"{lock}: pip could not install the layer (exit {result.returncode}).\npip said:\n{output}")


def _drop_scripts(site: Path) -> None:
    """Remove console scripts and their RECORD lines. Lambda never runs them, and pip writes the building
    interpreter's path into their shebangs, which would make the zip differ from one venv to the next."""
    shutil.rmtree(site / "bin", ignore_errors=True)
    for record in site.glob("*.dist-info/RECORD"):
        lines = record.read_text().splitlines(keepends=True)
        record.write_text("".join(line for line in lines if not line.startswith("../")))


def _files(root: Path, tops: Sequence[str]) -> Iterator[Path]:
    for top in tops:
        yield from (p for p in (root / top).rglob("*") if p.is_file() and not p.is_symlink())


def write_zip(root: Path, tops: Sequence[str], out: Path) -> None:
    """Zip the files under `root/<top>` with names relative to `root`: entries sorted, every timestamp the zip
    epoch, modes 0644 (0755 where the owner may execute), no directory entries, so equal trees give equal bytes."""
    names = sorted(p.relative_to(root).as_posix() for p in _files(root, tops))
    with zipfile.ZipFile(out, "w") as archive:
        for name in names:
            path = root / name
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            info.create_system = 3  # Unix, so the external attributes below are read as a mode
            mode = 0o755 if path.stat().st_mode & 0o100 else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=6)  # zlib's default, stated: it shapes the bytes


def source_code_hash(zip_file: Path) -> str:
    """base64(sha256(zip)): what Lambda reports as the layer's CodeSha256, and what the provider compares."""
    stat = zip_file.stat()
    return _digest(zip_file, stat.st_size, stat.st_mtime_ns)


@cache
def _digest(zip_file: Path, size: int, mtime_ns: int) -> str:
    # Keyed by size and mtime too: a zip is immutable once renamed into place, but `make clean` may remove it.
    return base64.b64encode(hashlib.sha256(zip_file.read_bytes()).digest()).decode()


# --- Pulumi -------------------------------------------------------------------------------------------------

def dependency_layer(name: str, layer: Layer, *, description: str,
                     opts: pulumi.ResourceOptions | None = None) -> aws.lambda_.LayerVersion:
    """A Lambda layer version holding `layer`'s lock for python3.12 on arm64. A new version is published only
    when the zip's bytes change (`source_code_hash`)."""
    archive = build_layer(layer)
    if runtime_compiler() is None:
        bytecode.warn_missing_compiler(LAMBDA_PYTHON)
    return aws.lambda_.LayerVersion(
        name,
        layer_name=f"{pulumi.get_project()}-{pulumi.get_stack()}-{name}",
        description=description,
        code=pulumi.FileArchive(str(archive)),
        source_code_hash=source_code_hash(archive),
        compatible_runtimes=[f"python{LAMBDA_PYTHON}"],
        compatible_architectures=["arm64"],
        opts=opts,
    )


# --- Locks --------------------------------------------------------------------------------------------------

def lock_command(layer: Layer) -> list[str]:
    """Resolve the layer's top-level pins for the runtime into its lock, every wheel's hash included."""
    return [sys.executable, "-m", "uv", "pip", "compile", "--quiet", "--no-config",
            str(layer.requirements.relative_to(PROJECT_DIR)),
            "--python-platform", resolver_platform(), "--python-version", LAMBDA_PYTHON,
            "--only-binary", ":all:", "--generate-hashes", "--custom-compile-command", "make lock",
            "--output-file", str(layer.lock.relative_to(PROJECT_DIR))]


def check_lock(layer: Layer) -> None:
    """Fail if the lock pulls in what the runtime provides (a second boto3 would shadow the runtime's)."""
    shadowing = sorted(RUNTIME_PROVIDED & locked_packages(layer.lock).keys())
    if shadowing:
        raise LayerBuildError(f"{layer.lock}: pulls in {', '.join(shadowing)}, which the Lambda runtime provides; "
                              f"drop what requires them from {layer.requirements}")


def lock_layer(layer: Layer) -> None:
    subprocess.run(lock_command(layer), cwd=PROJECT_DIR, check=True)
    check_lock(layer)


# --- Command line -------------------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.layers", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build every layer's zip (cached by lock and target)")
    build.add_argument("--build-root", type=Path, default=BUILD_ROOT)
    build.add_argument("--no-cache-dir", action="store_true", help="download every wheel (pip --no-cache-dir)")
    commands.add_parser("lock", help="regenerate every layer's lock from its requirements")
    args = parser.parse_args(argv)
    if args.command == "build" and runtime_compiler() is None:
        sys.stderr.write(bytecode.missing_compiler_message(LAMBDA_PYTHON) + "\n")
    for layer in LAYERS:
        started = time.perf_counter()
        if args.command == "lock":
            lock_layer(layer)
            sys.stdout.write(f"{layer.lock.relative_to(PROJECT_DIR)}: {len(locked_packages(layer.lock))} pins\n")
            continue
        archive = build_layer(layer, build_root=args.build_root, pip_cache=not args.no_cache_dir)
        sys.stdout.write(f"{archive}: {archive.stat().st_size / 1e6:.1f} MB, "
                         f"{time.perf_counter() - started:.1f} s\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

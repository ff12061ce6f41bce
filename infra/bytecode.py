"""Bytecode for the Lambda runtime, compiled at build time so a cold start does not compile.

Lambda mounts a layer at /opt and the function's code at /var/task, both read-only: Python cannot write
`__pycache__` there, so a module shipped without its `.pyc` is compiled from source on every cold start. Measured
on this machine (`bench/bytecode.py`), importing a TODO handler with its dependencies and no `.pyc` takes about
2.3-2.8x as long as with them. So every layer and code archive ships `.pyc` files made by a CPython of the runtime's
own version (bytecode is version-specific: python3.12 ignores a `cpython-311.pyc`).

The `.pyc` files are *unchecked-hash* ones (PEP 552): Python loads them without comparing them to their source.
Timestamp-based ones would not survive the zip, whose entries all carry the zip epoch, so every import would find
them stale; and the source never changes inside an immutable layer or code zip.

No CPython of the runtime's version on the building machine means no bytecode: the artifact still works, each cold
start just compiles, and the build says so (`pulumi up` as a warning).
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pulumi

# Run by a candidate interpreter: what it is, and the magic number its bytecode carries.
_PROBE = ("import importlib.util, sys; "
          "print(sys.implementation.name, *sys.version_info[:2], importlib.util.MAGIC_NUMBER.hex())")


class BytecodeError(RuntimeError):
    """The runtime's interpreter failed to compile a tree (its own message is kept)."""


@dataclass(frozen=True)
class Compiler:
    """A CPython whose bytecode the runtime loads."""

    executable: str
    version: str
    """`3.12`"""
    magic: str
    """The bytecode magic number, hex: fixed for every patch release of one minor version."""

    @property
    def tag(self) -> str:
        """What the bytes of compiled files depend on (part of every artifact's cache key)."""
        return f"cpython-{self.version} magic {self.magic}"

    @property
    def cache_tag(self) -> str:
        """The `__pycache__` file infix, e.g. `cpython-312`."""
        return "cpython-" + self.version.replace(".", "")


def _candidates(version: str) -> Iterator[str]:
    """Where a CPython `version` may be, most specific first: on PATH, pyenv's, uv's managed or system Pythons.

    Lazy, because the program looks on every run (previews too) and each look may start a process: the search stops
    at the first interpreter that answers. pyenv's shims are skipped: a shim for a version pyenv does not select
    only fails, slowly, and the versions folder holds the real interpreters behind it.
    """
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    on_path = shutil.which(f"python{version}")
    if on_path and not on_path.startswith(f"{pyenv_root}/shims/"):
        yield on_path
    yield from sorted(glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python{version}"), reverse=True)
    uv = _uv()
    if uv:
        probe = subprocess.run([*uv, "python", "find", "--no-project", version], capture_output=True, text=True,
                               check=False)
        if probe.returncode == 0 and probe.stdout.strip():
            yield probe.stdout.strip()


def _uv() -> list[str]:
    """uv on PATH, or the one installed in this interpreter's environment (`make install` puts it there)."""
    on_path = shutil.which("uv")
    if on_path:
        return [on_path]
    return [sys.executable, "-m", "uv"] if importlib.util.find_spec("uv") else []


def _probe(executable: str) -> tuple[str, str] | None:
    """`(version, magic)` if `executable` runs and is a CPython, else None (a pyenv shim with no such version
    installed, say, exits non-zero)."""
    try:
        result = subprocess.run([executable, "-I", "-c", _PROBE], capture_output=True, text=True, timeout=30,
                                check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    parts = result.stdout.split()
    if result.returncode != 0 or len(parts) != 4 or parts[0] != "cpython":
        return None
    return f"{parts[1]}.{parts[2]}", parts[3]


@cache
def find_compiler(version: str) -> Compiler | None:
    """A CPython `version` (e.g. "3.12") on this machine, or None."""
    for executable in _candidates(version):
        probed = _probe(executable)
        if probed and probed[0] == version:
            return Compiler(executable=executable, version=version, magic=probed[1])
    return None


def compile_tree(compiler: Compiler, root: Path, *, runtime_path: str) -> int:
    """Write an unchecked-hash `.pyc` beside every `.py` under `root`; returns how many were written.

    Each code object records its source file as `runtime_path` (where Lambda mounts `root`, e.g. `/opt/python`)
    rather than this build's temporary folder: tracebacks name the runtime's path, and equal trees give equal bytes
    wherever they are built.
    """
    result = subprocess.run(
        [compiler.executable, "-I", "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
         "-s", str(root), "-p", runtime_path, str(root)],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise BytecodeError(f"python{compiler.version} could not compile {root}:\n"
                            f"{(result.stdout + result.stderr).strip()[-3000:]}")
    return sum(1 for _ in root.rglob(f"*.{compiler.cache_tag}.pyc"))


def missing_compiler_message(version: str) -> str:
    return (f"no CPython {version} on this machine, so the Lambda layers and function code ship without bytecode and "
            f"every cold start compiles their modules (imports measured 2.3-2.8x slower, bench/bytecode.py). "
            f"Install one (`uv python install {version}`) and build again.")


@cache
def warn_missing_compiler(version: str) -> None:
    """Say it once per program run, not once per layer and code archive."""
    pulumi.log.warn(missing_compiler_message(version))

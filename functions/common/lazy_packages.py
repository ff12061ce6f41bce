"""Lazy re-exports for the Powertools packages whose `__init__` imports every sibling it re-exports.

`aws_lambda_powertools.event_handler/__init__.py` imports the AppSync, AppSync Events, Bedrock, VPC Lattice and
HTTP resolvers (and with them asyncio and ssl) to re-export them, and `utilities.data_classes/__init__.py` imports
all thirty event classes, although a REST function uses one resolver and its event. Importing a submodule always
runs its package's `__init__` first, so even `event_handler.api_gateway` pays for the rest: about 100 modules and a
third of a TODO handler's import (README, cold starts).

`install()` puts a finder in front of the normal ones for the packages in `DEFERRED`. It loads such a package with
its real spec (`__path__`, `__file__` unchanged, so submodules import as usual) but, instead of running the
`__init__`, reads the names it re-exports from the file itself (`from .x import A` -> A lives in `.x`) and resolves
each on first access (PEP 562 `__getattr__`), importing only the submodule that defines it. So
`from aws_lambda_powertools.event_handler import APIGatewayRestResolver` imports `api_gateway` and nothing else,
while every name of the package's `__all__` stays importable, star-imports included. An `__init__` that does
anything but re-export (a Powertools upgrade that adds a side effect) is run normally, so the worst a change
upstream can cost is the time this saves; `tests/functions/test_lazy_packages.py` notices that case.

Standard library only: `functions/__init__.py` installs this, and the Pulumi program imports that package. The
finder and loader follow the import protocols without subclassing `importlib.abc`, whose import (with
`importlib.resources`) would cost more than a third of what this saves.
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.machinery import ModuleSpec, PathFinder
from importlib.util import resolve_name
from types import ModuleType
from typing import Any

# Packages whose `__init__` only re-exports siblings; each is imported by every function of a group.
DEFERRED = frozenset({
    "aws_lambda_powertools.event_handler",  # REST resolver: skips AppSync (asyncio, ssl), Bedrock, Lattice, HTTP
    "aws_lambda_powertools.event_handler.openapi",  # api_gateway needs its config, not the spec merger
    "aws_lambda_powertools.utilities.data_classes",  # one event class per group instead of all thirty
})


@dataclass(frozen=True)
class Reexports:
    """What a pure re-exporting `__init__` binds: each name -> (module it comes from, its name there)."""

    names: dict[str, tuple[str, str]]
    all: tuple[str, ...] | None


def read_reexports(source: str, package: str) -> Reexports | None:
    """The re-exports of an `__init__`, or None if it does anything else (then it must run as written)."""
    names: dict[str, tuple[str, str]] = {}
    exported: tuple[str, ...] | None = None
    for node in ast.parse(source).body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # docstring
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        if isinstance(node, ast.ImportFrom) and all(alias.name != "*" for alias in node.names):
            origin = resolve_name("." * node.level + (node.module or ""), package) if node.level else node.module
            if origin is None:
                return None
            for alias in node.names:
                names[alias.asname or alias.name] = (origin, alias.name)
            continue
        if _is_all_literal(node):
            exported = tuple(ast.literal_eval(node.value))  # type: ignore[attr-defined]
            continue
        return None  # code with effects, a bare `import x`, a star-import, a conditional: run it as written
    return Reexports(names, exported)


def _is_all_literal(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Assign)
        and [getattr(t, "id", None) for t in node.targets] == ["__all__"]
        and isinstance(node.value, ast.List | ast.Tuple)
        and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.value.elts)
    )


def _resolve(package: str, origin: str, name: str) -> Any:
    """What `from origin import name` binds: an attribute of `origin`, or else its submodule `name`."""
    if origin != package:  # `from . import x` names a submodule; reading it from the package would recurse
        source = importlib.import_module(origin)
        if hasattr(source, name):
            return getattr(source, name)
    return importlib.import_module(f"{origin}.{name}")


class _ReexportLoader:
    """Execs a package as lazy re-exports: the module exists at once, each name is imported when first read."""

    def __init__(self, exports: Reexports) -> None:
        self.exports = exports

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return None  # the default module, with the real spec's __path__/__file__

    def exec_module(self, module: ModuleType) -> None:
        names, package = self.exports.names, module.__name__

        def __getattr__(attr: str) -> Any:
            if attr not in names:
                raise AttributeError(f"module {package!r} has no attribute {attr!r}")
            value = _resolve(package, *names[attr])
            setattr(module, attr, value)  # later reads skip this function
            return value

        def __dir__() -> list[str]:
            return sorted(set(vars(module)) | set(names))

        module.__getattr__ = __getattr__  # type: ignore[method-assign]
        module.__dir__ = __dir__  # type: ignore[method-assign]
        if self.exports.all is not None:
            module.__all__ = list(self.exports.all)  # type: ignore[attr-defined]


class LazyReexportFinder:
    """Finds the `DEFERRED` packages where the path finder would, and loads the pure ones as lazy re-exports."""

    def __init__(self, packages: frozenset[str] = DEFERRED) -> None:
        self.packages = packages

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in self.packages:
            return None
        spec = PathFinder.find_spec(fullname, path)
        if spec is None or not (spec.origin or "").endswith(".py") or spec.submodule_search_locations is None:
            return spec  # not found, not a package, or sourceless: the normal loader
        try:
            with open(str(spec.origin), encoding="utf-8") as source:
                exports = read_reexports(source.read(), fullname)
        except (OSError, UnicodeDecodeError, SyntaxError):
            return spec  # the source cannot be read (its bytecode may still load): run it as the normal loader would
        if exports is not None:
            spec.loader = _ReexportLoader(exports)  # type: ignore[assignment]  # the loader protocol, not the ABC
        return spec


def install() -> None:
    """Put the finder first in `sys.meta_path` (once); packages already imported keep their module."""
    if not any(isinstance(finder, LazyReexportFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, LazyReexportFinder())

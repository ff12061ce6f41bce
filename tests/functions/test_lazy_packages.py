"""`functions.common.lazy_packages`: Powertools' re-exporting package inits load only what a function uses.

What it must never do is change what a name means: every name of each deferred package's `__all__` resolves to the
object the real `__init__` binds (compared against an interpreter that runs the real one), star-imports and
submodule imports work, and an `__init__` that does more than re-export runs as written.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import py_compile
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from functions.common.lazy_packages import DEFERRED, LazyReexportFinder, read_reexports

ROOT = Path(__file__).resolve().parents[2]

# Which object each name of a package's `__all__` is, as `module:qualname`; `lazy` installs the finder first.
NAMES_PROBE = r"""
import importlib, json, sys
if sys.argv[2] == "lazy":
    from functions.common import lazy_packages
    lazy_packages.install()
package = importlib.import_module(sys.argv[1])
names = {}
for name in package.__all__:
    obj = getattr(package, name)
    names[name] = f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', type(obj).__qualname__)}"
print(json.dumps(names))
"""

# What a TODO handler's import leaves loaded.
LOADED_PROBE = r"""
import json, sys
import functions.todos.handlers
print(json.dumps(sorted(sys.modules)))
"""


def run(script: str, *args: str) -> str:
    # A fresh interpreter at the repo root: only what the script imports is loaded (`functions` installs the finder).
    return subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout


@pytest.mark.parametrize("package", sorted(DEFERRED))
def test_every_exported_name_is_the_object_the_real_init_binds(package: str) -> None:
    real, lazy = json.loads(run(NAMES_PROBE, package, "real")), json.loads(run(NAMES_PROBE, package, "lazy"))
    assert real and lazy == real


@pytest.mark.parametrize("package", sorted(DEFERRED))
def test_the_installed_powertools_inits_are_still_pure_reexports(package: str) -> None:
    # A Powertools upgrade whose __init__ gains a side effect makes the finder run it as written: safe, but the
    # cold-start saving is gone, so this notices it.
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin is not None
    exports = read_reexports(Path(spec.origin).read_text(encoding="utf-8"), package)
    assert exports is not None and exports.all, package
    assert set(exports.all) <= set(exports.names), package


def test_a_todo_handler_loads_no_resolver_or_event_it_does_not_use() -> None:
    loaded = set(json.loads(run(LOADED_PROBE)))
    assert "aws_lambda_powertools.event_handler.api_gateway" in loaded  # what it does use
    unused = {"aws_lambda_powertools.event_handler.appsync", "aws_lambda_powertools.event_handler.bedrock_agent",
              "aws_lambda_powertools.event_handler.vpc_lattice", "aws_lambda_powertools.event_handler.openapi.merge",
              "aws_lambda_powertools.utilities.data_classes.kinesis_stream_event", "asyncio"}
    assert not unused & loaded


def test_star_import_dir_and_submodules_still_work() -> None:
    namespace: dict[str, object] = {}
    exec("from aws_lambda_powertools.event_handler import *", namespace)
    from aws_lambda_powertools import event_handler
    from aws_lambda_powertools.event_handler import appsync

    assert namespace["AppSyncResolver"] is appsync.AppSyncResolver is event_handler.AppSyncResolver
    assert {"APIGatewayRestResolver", "Response"} <= set(dir(event_handler))
    assert event_handler.appsync is appsync
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchResolver'"):
        event_handler.NoSuchResolver  # noqa: B018


# --- The finder on packages of our own ---------------------------------------------------------------------

@pytest.fixture
def site(tmp_path: Path) -> Iterator[Path]:
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in [m for m in sys.modules if m.split(".")[0] in {"pure_pkg", "busy_pkg"}]:
        del sys.modules[name]


def package(root: Path, name: str, init: str, **modules: str) -> None:
    (root / name).mkdir()
    (root / name / "__init__.py").write_text(init)
    for module, body in modules.items():
        (root / name / f"{module}.py").write_text(body)


def load(name: str) -> object:
    finder = LazyReexportFinder(frozenset({name}))
    sys.meta_path.insert(0, finder)
    try:
        return importlib.import_module(name)
    finally:
        sys.meta_path.remove(finder)


def test_a_pure_package_imports_a_submodule_only_when_its_name_is_read(site: Path) -> None:
    package(site, "pure_pkg", '"""Doc."""\nfrom __future__ import annotations\nfrom .used import A\n'
            'from pure_pkg.other import B as Renamed\nfrom . import tool\n__all__ = ["A", "Renamed", "tool"]\n',
            used="A = 'a'\n", other="B = 'b'\n", tool="C = 'c'\n")
    module = load("pure_pkg")
    assert "pure_pkg.used" not in sys.modules and "pure_pkg.other" not in sys.modules
    assert module.A == "a" and "pure_pkg.used" in sys.modules  # type: ignore[attr-defined]
    assert "pure_pkg.other" not in sys.modules
    assert module.Renamed == "b"  # type: ignore[attr-defined]
    assert module.tool.C == "c"  # type: ignore[attr-defined]  # `from . import tool` binds the submodule
    assert module.__all__ == ["A", "Renamed", "tool"]  # type: ignore[attr-defined]


def test_a_package_init_with_a_side_effect_runs_as_written(site: Path) -> None:
    package(site, "busy_pkg", "from .used import A\nREADY = A * 2\n", used="A = 'a'\n")
    module = load("busy_pkg")
    assert module.READY == "aa"  # type: ignore[attr-defined]
    assert "pure_pkg" not in sys.modules


@pytest.mark.parametrize("init", [
    "from .x import *\n",  # a star-import cannot be resolved name by name
    "import os\n",  # binds a module the package's users may read
    "from .x import A\nA.setup()\n",
    "try:\n    from .x import A\nexcept ImportError:\n    A = None\n",
    "__all__ = sorted(['A'])\n",
])
def test_anything_but_plain_reexports_is_not_deferred(init: str) -> None:
    assert read_reexports(init, "pkg") is None


def test_relative_reexports_resolve_against_the_package() -> None:
    exports = read_reexports("from .a import X\nfrom ..b.c import Y as Z\n", "top.pkg")
    assert exports is not None
    assert exports.names == {"X": ("top.pkg.a", "X"), "Z": ("top.b.c", "Y")}
    assert exports.all is None


def test_a_package_whose_source_cannot_be_parsed_is_left_to_the_normal_loader(site: Path) -> None:
    # As in a layer whose bytecode is compiled and whose source is not what the .pyc came from (test_bytecode).
    package(site, "busy_pkg", "from .used import A\n", used="A = 'a'\n")
    unchecked = py_compile.PycInvalidationMode.UNCHECKED_HASH
    py_compile.compile(str(site / "busy_pkg" / "__init__.py"), invalidation_mode=unchecked)
    (site / "busy_pkg" / "__init__.py").write_text("this is not python (\n")
    module = load("busy_pkg")
    assert module.A == "a"  # type: ignore[attr-defined]

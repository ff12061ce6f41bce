"""Every Lambda function the program deploys runs an entry point of its group's `handlers` module (one file shape)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

from functions.common.settings import RUNTIME_ENVIRONMENT
from functions.common.tracing import traced
from sim.capture import Graph

ROOT = Path(__file__).resolve().parents[2]


def test_every_function_runs_a_handlers_entry_point_that_exists(dev_graph: Graph) -> None:
    functions = dev_graph.of_type("aws:lambda/function:Function")
    assert len(functions) >= 12  # 5 todos, 1 images, 3 auth (with the authorizer), 3 orders
    for function in functions:
        module, _, name = str(function.inputs["handler"]).rpartition(".")
        package, _, group = module.removesuffix(".handlers").rpartition(".")
        assert module.endswith(".handlers") and package == "functions", function.urn
        assert callable(getattr(importlib.import_module(module), name, None)), f"{function.urn}: {module}.{name}"
        # The archive ships the group the handler belongs to.
        assert f"functions/{group}/handlers.py" in function.inputs["code"]["assets"], function.urn


def test_every_function_gets_the_runtime_environment_beside_its_contract(dev_graph: Graph) -> None:
    for function in dev_graph.of_type("aws:lambda/function:Function"):
        variables = function.inputs["environment"]["variables"]
        assert {k: variables.get(k) for k in RUNTIME_ENVIRONMENT} == dict(RUNTIME_ENVIRONMENT), function.urn


def test_the_runtime_environment_spares_the_first_model_the_plugin_scan(tmp_path: Path) -> None:
    # Why PYDANTIC_DISABLE_PLUGINS is set: without it, the first model pydantic builds asks importlib.metadata for
    # the entry points of every installed distribution. Proven on the TODO models, which build on first use.
    probe = (
        "import importlib.metadata as md\n"
        "scans = []\n"
        "real = md.entry_points\n"
        "md.entry_points = lambda **kw: scans.append(kw) or real(**kw)\n"
        "from functions.todos.models import TodoCreate\n"
        "TodoCreate.model_validate({'title': 'x'})\n"
        "print(bool(scans))\n"
    )

    def scanned(env: dict[str, str]) -> bool:
        out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                             check=True).stdout
        return out.strip() == "True"

    base = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    assert scanned(base)  # else the variable guards nothing and can go
    assert not scanned({**base, **RUNTIME_ENVIRONMENT})


def test_every_deployed_entry_point_is_traced_outermost(dev_graph: Graph) -> None:
    # `traced` returns the same wrapper code for every handler; outermost, its span covers the whole invocation.
    wrapper = traced(lambda event, context: None).__code__
    for function in dev_graph.of_type("aws:lambda/function:Function"):
        module, _, name = str(function.inputs["handler"]).rpartition(".")
        assert getattr(importlib.import_module(module), name).__code__ is wrapper, function.urn

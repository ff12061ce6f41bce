"""Every Lambda function the program deploys runs an entry point of its group's `handlers` module (one file shape)."""

from __future__ import annotations

import importlib

from sim.capture import Graph


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

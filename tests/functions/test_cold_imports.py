"""The cold-start contract of every deployed handler module, checked in a fresh interpreter (no timing here:
speed is measured by `bench/coldstart.py`).

Importing a handler module must not import boto3, botocore's client machinery, requests/urllib3, PyJWT or
OpenTelemetry (clients, sessions and the tracer are built on first use, the tracer only with an OTLP endpoint set),
must load only the Powertools utilities every entry point needs, and must not build any pydantic validator of the
group's models or env contract (they are `defer_build`, built on first use). The bare `botocore` package is the one
exception: Powertools' own `__init__` imports it to probe for user-agent support, whatever submodule a function
imports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra import images as images_infra
from infra import shop_functions as shop_infra
from infra import todos as todos_infra

ROOT = Path(__file__).resolve().parents[2]
# The handler strings the components deploy (infra/todos.py spells its module path in the handler argument).
DEPLOYED = [
    *(f"functions.todos.handlers.{entry}" for entry in todos_infra.HANDLERS.values()),
    images_infra.HANDLER,
    *shop_infra.HANDLERS.values(),
    shop_infra.AUTHORIZER_HANDLER,
]
MODULES = sorted({handler.rpartition(".")[0] for handler in DEPLOYED})
# Top-level packages that are only ever needed once an invocation talks to AWS, HTTP or a token, or traces (the
# OpenTelemetry SDK and its protobuf, `google`, load on the first invocation with an OTLP endpoint set).
LAZY_PACKAGES = ("boto3", "s3transfer", "requests", "urllib3", "jwt", "cryptography", "opentelemetry", "google")
# Powertools utilities the entry points use at import: typed events (data_classes), the logger's correlation-id
# paths (jmespath_utils) and `LambdaContext` (typing). Idempotency, parameters, batch, ... are loaded on first use.
POWERTOOLS_UTILITIES = {"data_classes", "jmespath_utils", "typing"}

PROBE = r"""
import importlib, json, sys
module = importlib.import_module(sys.argv[1])
group = sys.argv[1].split(".")[1]
from pydantic import BaseModel
built = []
for part in ("models", "settings"):
    mod = sys.modules.get(f"functions.{group}.{part}")
    for name, value in vars(mod or object()).items():
        if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == mod.__name__:
            if value.__pydantic_complete__:
                built.append(f"{mod.__name__}.{name}")
print(json.dumps({"modules": sorted(sys.modules), "built": built}))
"""


def loaded_by(module: str) -> dict[str, list[str]]:
    # Tracing configured, as a stack with `otlpEndpoint` deploys it: the import must stay free of the SDK anyway.
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    proc = subprocess.run([sys.executable, "-c", PROBE, module], cwd=ROOT, capture_output=True, text=True,
                          check=True, env=env)
    result: dict[str, list[str]] = json.loads(proc.stdout.splitlines()[-1])
    return result


@pytest.fixture(scope="module", params=MODULES)
def handler_import(request: pytest.FixtureRequest) -> tuple[str, dict[str, list[str]]]:
    return request.param, loaded_by(request.param)


def test_every_deployed_handler_module_is_probed() -> None:
    assert MODULES == [
        "functions.auth.handlers", "functions.images.handlers", "functions.orders.handlers", "functions.todos.handlers"
    ]


def test_import_loads_no_aws_sdk_http_client_or_jwt(handler_import: tuple[str, dict[str, list[str]]]) -> None:
    module, found = handler_import
    eager = [m for m in found["modules"] if m.partition(".")[0] in LAZY_PACKAGES or m.startswith("botocore.")]
    assert not eager, f"{module} imports at import time: {eager}"


def test_import_loads_only_the_powertools_utilities_in_use(handler_import: tuple[str, dict[str, list[str]]]) -> None:
    module, found = handler_import
    prefix = "aws_lambda_powertools.utilities."
    utilities = {m.removeprefix(prefix).partition(".")[0] for m in found["modules"] if m.startswith(prefix)}
    assert utilities <= POWERTOOLS_UTILITIES, f"{module} loads {sorted(utilities - POWERTOOLS_UTILITIES)}"


def test_import_builds_no_model_validator(handler_import: tuple[str, dict[str, list[str]]]) -> None:
    module, found = handler_import
    assert not found["built"], f"{module} builds at import: {found['built']} (set defer_build=True)"

"""The program runs with only requirements.txt installed, as `pulumi up` runs it (Pulumi.yaml `toolchain: pip`).

The CLI builds `.venv` from requirements.txt alone, so anything the program imports from the runtime code's
dependencies (Pillow, Powertools, PyJWT, boto3, FastAPI, psycopg) kills it at import, while the suite's own venv
(which has everything) would never notice. Two guards:
- fast: every module under infra/ imported in a subprocess whose `sys.meta_path` refuses the runtime-only packages;
- slow: a real venv made from requirements.txt only (cached by its hash under build/), running `__main__.py` as
  the language host does (tests/infra/program_host.py) under plain SDK mocks with the dev stack's config and
  `canaryAnalysis` on (so the canary gate's modules are imported there too); then the gate's pickled provider,
  as that run serialized it, loaded and called by the SDK's own dynamic-provider host (`python -m pulumi.dynamic`,
  what the CLI's `pulumi-resource-pulumi-python` runs) in that venv, over gRPC, as the engine calls it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.config import PROJECT_DIR, stack_config_values
from sim.capture import capture
from tests.infra.conftest import TEST_SECRETS, run_main

# `--dist loadfile` (pyproject addopts) keeps the module on one worker, so the program runs once in the venv.

REQUIREMENTS = PROJECT_DIR / "requirements.txt"
HOST = Path(__file__).with_name("program_host.py")
# What the Lambda functions and the services need at run time and the program must never import.
RUNTIME_ONLY = ("PIL", "aws_lambda_powertools", "jwt", "boto3", "botocore", "fastapi", "psycopg")
# requests is runtime-only for our code, but pulumi-kubernetes itself imports it (pulumi_kubernetes.yaml, loaded
# by helm.v3 and apiextensions), so it is refused only when the importer is the project's own code.
OWN_CODE_ONLY = ("requests",)
OWN_PACKAGES = ("infra", "functions", "mesh", "services", "local", "__main__")
TOP_LEVEL = {
    ("serverless-mesh:todos:TodosApi", "todos"),
    ("serverless-mesh:images:ImagePipeline", "images"),
    ("serverless-mesh:platform:Platform", "platform"),
    ("serverless-mesh:shop:Shop", "shop"),
    ("serverless-mesh:api:HttpApi", "api"),
    ("serverless-mesh:canary:CanaryApp", "canary"),
    ("aws:lambda/layerVersion:LayerVersion", "deps"),
}
# The dev stack with the canary gate on: every module `pulumi up` can import runs in the venv.
HOST_OVERRIDES = {"canaryAnalysis": True}


def _infra_modules() -> list[str]:
    return sorted(f"infra.{p.stem}" for p in (PROJECT_DIR / "infra").glob("*.py") if p.stem != "__init__")


# Runs in a fresh interpreter: a finder ahead of every other one that refuses the runtime-only packages.
_BLOCKED_IMPORTS = """
import importlib, sys

ALWAYS, OWN_ONLY, OWN = {always!r}, {own_only!r}, {own!r}


def importer() -> str:
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith("<frozen importlib"):
        frame = frame.f_back
    return frame.f_globals.get("__name__", "") if frame is not None else ""


class Refuse:
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        who = importer()
        if top in ALWAYS or (top in OWN_ONLY and who.partition(".")[0] in OWN):
            raise ImportError(f"{{name}} is not in requirements.txt (imported by {{who}})")
        return None


sys.meta_path.insert(0, Refuse())
for module in {modules!r}:
    importlib.import_module(module)
print("imported", len({modules!r}))
"""


def _import_blocked(modules: list[str]) -> subprocess.CompletedProcess[str]:
    code = _BLOCKED_IMPORTS.format(always=RUNTIME_ONLY, own_only=OWN_CODE_ONLY, own=OWN_PACKAGES, modules=modules)
    return subprocess.run([sys.executable, "-c", code], cwd=PROJECT_DIR, capture_output=True, text=True,
                          timeout=120, check=False)


def test_every_infra_module_imports_without_the_runtime_packages() -> None:
    modules = _infra_modules()
    assert "infra.images" in modules and "infra.shop" in modules
    result = _import_blocked(modules)
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_contract_modules_infra_shares_with_the_lambda_code_import_without_the_runtime_packages() -> None:
    # Packages' __init__ run on any import below them; settings/permissions/keys are the one definition of
    # env-var contracts, IAM actions and S3 prefixes that both sides read.
    root = PROJECT_DIR / "functions"
    modules = ["functions"]
    for group in sorted(p.parent for p in root.glob("*/__init__.py")):
        modules.append(f"functions.{group.name}")
        modules += [f"functions.{group.name}.{m}" for m in ("settings", "permissions", "keys")
                    if (group / f"{m}.py").exists()]
    assert "functions.images.keys" in modules and "functions.todos.permissions" in modules
    result = _import_blocked(modules)
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_import_guard_refuses_what_the_lambda_code_needs() -> None:
    # The guard itself must bite: the image function's logic needs Pillow, the TODO handlers Powertools (PyJWT and
    # boto3 are imported on first use since the cold-start work, so no module pulls them in at import).
    result = _import_blocked(["functions.images.logic"])
    assert result.returncode != 0 and "PIL is not in requirements.txt" in result.stderr
    result = _import_blocked(["functions.todos.handlers"])
    assert result.returncode != 0 and "aws_lambda_powertools is not in requirements.txt" in result.stderr


# --- The real venv ---------------------------------------------------------------------------------------

def program_venv() -> Path:
    """build/program-venv-<hash of requirements.txt>: made once, under a file lock (xdist runs 2 workers)."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]
    target = PROJECT_DIR / "build" / f"program-venv-{digest}"
    complete = target / ".complete"
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"program-venv-{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not complete.exists():
            shutil.rmtree(target, ignore_errors=True)  # a run killed half-way left a partial venv
            venv.EnvBuilder(with_pip=True).create(target)
            subprocess.run([str(target / "bin" / "python"), "-m", "pip", "install", "--quiet",
                            "--disable-pip-version-check", "-r", str(REQUIREMENTS)], check=True, timeout=1200)
            complete.write_text(REQUIREMENTS.read_text())  # written last: its presence means the venv is whole
    return target


@pytest.fixture(scope="module")
def host_run() -> dict[str, object]:
    """The dev stack's program run by the language host's steps in the requirements-only venv."""
    python = program_venv() / "bin" / "python"
    config = stack_config_values("dev", HOST_OVERRIDES, secrets=TEST_SECRETS)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PULUMI_"))}
    # How the language host hands config to the program (pulumi.runtime.get_config_env / _secret_keys_env).
    env["PULUMI_CONFIG"] = json.dumps(config.values)
    env["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(sorted(config.secret_keys))
    result = subprocess.run([str(python), str(HOST), str(PROJECT_DIR), "dev"], cwd=PROJECT_DIR, env=env,
                            capture_output=True, text=True, timeout=600, check=False)
    report = json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else {}
    return {"returncode": result.returncode, "stderr": result.stderr, **report}


@pytest.mark.slow
def test_program_exits_0_in_a_venv_of_requirements_txt_only(host_run: dict[str, object]) -> None:
    assert host_run["returncode"] == 0, str(host_run["stderr"])[-4000:]


@pytest.mark.slow
def test_program_registers_the_top_level_components(host_run: dict[str, object]) -> None:
    registered = {(r["type"], r["name"]) for r in host_run["resources"]}  # type: ignore[attr-defined]
    assert registered >= TOP_LEVEL, TOP_LEVEL - registered


@pytest.mark.slow
def test_program_registers_the_same_resources_as_under_the_full_venv(host_run: dict[str, object]) -> None:
    # Nothing the program builds depends on which venv it runs in.
    full = capture(run_main, stack_config_values("dev", HOST_OVERRIDES, secrets=TEST_SECRETS))
    registered = sorted((r["type"], r["name"]) for r in host_run["resources"])  # type: ignore[attr-defined]
    assert registered == sorted((r.type, r.name) for r in full.resources)


@pytest.mark.slow
def test_program_imports_none_of_the_runtime_only_packages(host_run: dict[str, object]) -> None:
    modules = {m.partition(".")[0] for m in host_run["modules"]}  # type: ignore[attr-defined]
    assert not modules & set(RUNTIME_ONLY), sorted(modules & set(RUNTIME_ONLY))
    assert "infra.images" in host_run["modules"]  # type: ignore[operator]
    assert {"infra.gate", "infra.monitoring"} <= set(host_run["modules"])  # type: ignore[call-overload]


# --- The canary gate's provider, loaded the way `pulumi up` loads it ----------------------------------------------

@pytest.fixture(scope="module")
def provider_host(host_run: dict[str, object]) -> Iterator[tuple[Any, str]]:
    """`python -m pulumi.dynamic` in the requirements-only venv, started in the project folder as the CLI starts its
    provider plugins; yields a gRPC ResourceProvider stub and the gate's serialized provider from the host run."""
    import grpc
    from pulumi.runtime.proto import provider_pb2_grpc

    [gate] = [r for r in host_run["resources"] if r["type"] == GATE]  # type: ignore[attr-defined]
    python = program_venv() / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PULUMI_"))}
    proc = subprocess.Popen([str(python), "-u", "-m", "pulumi.dynamic"], cwd=PROJECT_DIR, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().strip() or 0)  # the host prints the port it listens on (127.0.0.1)
        assert port, proc.stderr.read().decode() if proc.stderr else "no port"
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        yield provider_pb2_grpc.ResourceProviderStub(channel), str(gate["provider"])
        channel.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _struct(values: dict[str, Any]) -> Any:
    from google.protobuf import struct_pb2

    struct = struct_pb2.Struct()
    struct.update(values)  # numbers become doubles, as the engine sends them
    return struct


def _gate_request(kind: str, provider: str, server: str, previous: int, new: int) -> Any:
    from pulumi.runtime.proto import provider_pb2

    from tests.infra.test_canary_gate import props

    urn = "urn:pulumi:dev::serverless-mesh::serverless-mesh:canary:CanaryApp$" + GATE + "::canary-gate"
    olds = _struct({"weight": previous, "decision": "earlier", "__provider": provider})
    news = _struct({**props(new, server), "__provider": provider})
    request = provider_pb2.DiffRequest if kind == "diff" else provider_pb2.UpdateRequest
    return request(id="canary/myapp-v2", urn=urn, olds=olds, news=news)


GATE = "pulumi-python:dynamic/canary:CanaryGate"


@pytest.mark.slow
def test_the_gates_provider_is_a_reference_to_infra_gate_not_a_copy(host_run: dict[str, object]) -> None:
    import base64

    [gate] = [r for r in host_run["resources"] if r["type"] == GATE]  # type: ignore[attr-defined]
    pickled = base64.b64decode(str(gate["provider"]))
    assert b"infra.gate" in pickled and b"CanaryGateProvider" in pickled and len(pickled) < 500


@pytest.mark.slow
def test_the_cli_provider_host_diffs_a_raise_without_querying(provider_host: tuple[Any, str]) -> None:
    from pulumi.runtime.proto import provider_pb2

    stub, provider = provider_host
    # The engine calls Create/Update during a preview only for a provider that says it supports previews; this
    # host does not, so `pulumi preview` (and the preview half of `pulumi up`) reaches only Check and Diff.
    assert stub.Configure(provider_pb2.ConfigureRequest()).supportsPreview is False
    # No server listens at 127.0.0.1:9: a query would fail the call.
    assert stub.Diff(_gate_request("diff", provider, "http://127.0.0.1:9", 10, 50)).changes == \
        provider_pb2.DiffResponse.DIFF_SOME
    assert stub.Diff(_gate_request("diff", provider, "http://127.0.0.1:9", 10, 10)).changes == \
        provider_pb2.DiffResponse.DIFF_NONE


@pytest.mark.slow
def test_the_cli_provider_host_passes_a_healthy_raise_and_fails_an_unhealthy_one(
        provider_host: tuple[Any, str]) -> None:
    import grpc

    from tests.infra.test_prometheus_source import answer_window, fake_cluster

    stub, provider = provider_host
    with fake_cluster() as cluster:
        answer_window(cluster, 60, "1200", "1", "25")
        done = stub.Update(_gate_request("update", provider, cluster.url, 10, 50))
        assert dict(done.properties)["weight"] == 50
        answer_window(cluster, 60, "1000", "314", "25")
        with pytest.raises(grpc.RpcError) as failed:
            stub.Update(_gate_request("update", provider, cluster.url, 10, 50))
        asked = len(cluster.seen)
        rolled_back = stub.Update(_gate_request("update", provider, cluster.url, 50, 0))
        assert len(cluster.seen) == asked
    # What `pulumi up` prints as the resource's error: the provider's message ends the traceback.
    assert failed.value.code() == grpc.StatusCode.UNKNOWN
    assert ("GateFailure: canaryWeight 10 -> 50 refused: v2 error rate 31.4% > 1% (canaryMaxErrorPercent); the "
            "VirtualService keeps canaryWeight 10") in failed.value.details()
    assert dict(rolled_back.properties)["weight"] == 0

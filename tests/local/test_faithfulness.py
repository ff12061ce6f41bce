"""A wiring mistake in the program breaks the twin loudly, before anything runs, and leaves nothing behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from functions.common.settings import RUNTIME_ENVIRONMENT
from infra.config import PROJECT_DIR, stack_config_values
from local.errors import DeployError
from local.function_spec import FunctionSpec, check_environment, check_functions
from local.registry import check_wiring
from local.stack import program_file
from sim.capture import Graph, capture
from tests.local.conftest import PROGRAMS

SECRETS = {"jwtSigningKey": "k" * 40, "dbPassword": "p" * 24}


def _graph(name: str) -> Graph:
    return capture(program_file(PROGRAMS / name), stack_config_values("dev", secrets=SECRETS), stack="dev")


def test_function_missing_a_variable_its_code_reads_fails_naming_function_and_variable() -> None:
    with pytest.raises(DeployError) as err:
        check_functions(_graph("miswired.py"))
    assert "miswired-todos-get" in str(err.value)
    assert "TABLE_NAME" in str(err.value)


def test_invalid_value_for_a_typed_variable_fails() -> None:
    spec = FunctionSpec(resource_name="x", name="fn", arn="a", invoke_arn="b",
                        handler="functions.todos.handlers.get_todo",
                        environment={"TABLE_NAME": "t", "POWERTOOLS_SERVICE_NAME": "todos", "LOG_LEVEL": "LOUD",
                                     "OTEL_EXPORTER_OTLP_ENDPOINT": ""},
                        memory_mb=128, timeout_seconds=3)
    with pytest.raises(DeployError, match="LOG_LEVEL='LOUD'"):
        check_environment(spec)


def test_unread_variable_is_reported_as_a_warning() -> None:
    spec = FunctionSpec(resource_name="x", name="fn", arn="a", invoke_arn="b",
                        handler="functions.todos.handlers.get_todo",
                        environment={"TABLE_NAME": "t", "POWERTOOLS_SERVICE_NAME": "todos", "LOG_LEVEL": "INFO",
                                     "OTEL_EXPORTER_OTLP_ENDPOINT": "",
                                     "TABEL_NAME": "typo"}, memory_mb=128, timeout_seconds=3)
    assert check_environment(spec) == ["function fn: sets TABEL_NAME which its code never reads"]


def test_route_without_invoke_permission_fails_the_wiring_check() -> None:
    graph = _graph("echo_api.py")
    assert check_wiring(graph) == []
    graph.resources = [r for r in graph.resources if r.name != "api-invoke-fail"]
    problems = check_wiring(graph)
    assert len(problems) == 1
    assert "GET /fail" in problems[0] and "serverless-mesh-dev-fail" in problems[0]


@pytest.mark.slow
def test_up_with_a_miswired_program_exits_with_the_message_and_no_process_left(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "local", "up", "--state-dir", str(tmp_path), "--port", "0",
                             "--aws-port", "0", "--no-watch", "--program", str(PROGRAMS / "miswired.py")],
                            cwd=PROJECT_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    me = psutil.Process(proc.pid)
    started: dict[int, psutil.Process] = {}
    while proc.poll() is None:  # remember every process the twin starts (moto) before it fails
        try:
            started.update({c.pid: c for c in me.children(recursive=True)})
        except psutil.NoSuchProcess:
            break
    out, _ = proc.communicate(timeout=120)
    text = out.decode()
    assert proc.returncode == 1
    assert "deploy failed" in text and "miswired-todos-get" in text and "TABLE_NAME" in text
    assert "ready in" not in text
    assert started, "the twin should have started moto before the check failed"
    _, alive = psutil.wait_procs(list(started.values()), timeout=10)
    assert not alive
    assert not (tmp_path / "twin.json").exists()


def test_plan_with_a_miswired_program_exits_nonzero_naming_the_variable(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "local", "plan", "--state-dir", str(tmp_path), "--program",
                             str(PROGRAMS / "miswired.py")], cwd=PROJECT_DIR, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 1
    assert "TABLE_NAME" in result.stderr


def test_the_runtime_environment_is_not_reported_as_unread() -> None:
    # Every deployed function carries the layer's library settings beside its contract (infra.lambdas).
    spec = FunctionSpec(resource_name="x", name="fn", arn="a", invoke_arn="b",
                        handler="functions.todos.handlers.get_todo",
                        environment={"TABLE_NAME": "t", "POWERTOOLS_SERVICE_NAME": "todos", "LOG_LEVEL": "INFO",
                                     "OTEL_EXPORTER_OTLP_ENDPOINT": "", **RUNTIME_ENVIRONMENT},
                        memory_mb=128, timeout_seconds=3)
    assert check_environment(spec) == []

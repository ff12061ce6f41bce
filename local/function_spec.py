"""What the graph says about a Lambda function, its environment contract, and what one invocation returns.

Before any worker starts, the graph's variables are checked against the function group's `Env` model
(`functions/<group>/settings.py`), so a wiring bug (code reads `TABLE_NAME`, the resource does not set it) fails
the deploy naming the function and variable. The gateway and the S3 events engine read `InvokeResult`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from functions.common.settings import RUNTIME_ENVIRONMENT
from local.errors import DeployError
from sim.capture import Graph, Resource

FUNCTION = "aws:lambda/function:Function"


@dataclass(frozen=True)
class FunctionSpec:
    """What the graph says about one function."""

    resource_name: str
    name: str
    arn: str
    invoke_arn: str
    handler: str
    environment: dict[str, str]
    memory_mb: int
    timeout_seconds: float
    reserved_concurrency: int | None = None
    """`reservedConcurrentExecutions` (None: unreserved, the provider's -1)."""

    @classmethod
    def from_resource(cls, res: Resource) -> FunctionSpec:
        i, o = res.inputs, res.outputs
        variables = ((i.get("environment") or {}).get("variables")) or {}
        return cls(
            resource_name=res.name, name=res.physical_name, arn=str(o.get("arn")), invoke_arn=str(o.get("invokeArn")),
            handler=str(i.get("handler") or ""), environment={k: str(v) for k, v in variables.items()},
            memory_mb=int(i.get("memorySize") or 128), timeout_seconds=float(i.get("timeout") or 3),
            reserved_concurrency=_reserved(i.get("reservedConcurrentExecutions")),
        )


def _reserved(value: Any) -> int | None:
    return None if value is None or int(value) < 0 else int(value)


def env_model(spec: FunctionSpec) -> type[BaseModel]:
    """The `Env` model the handler's code reads: `<package>/settings.py` next to the handler's module.

    For `functions.todos.handlers.create_todo` that is `functions/todos/settings.py`; a package may name one model
    per handler in `ENV_BY_HANDLER`.
    """
    module, _, _function = spec.handler.rpartition(".")
    package = module.rpartition(".")[0]
    if not package:
        raise DeployError(f"function {spec.name}: handler {spec.handler!r} is not <package>.<module>.<function>")
    try:
        settings = importlib.import_module(f"{package}.settings")
    except ModuleNotFoundError as exc:
        raise DeployError(f"function {spec.name}: handler {spec.handler!r} has no {package.replace('.', '/')}/"
                          f"settings.py declaring its environment ({exc})") from None
    by_handler: dict[str, type[BaseModel]] = getattr(settings, "ENV_BY_HANDLER", {})
    model = by_handler.get(spec.handler) or getattr(settings, "Env", None)
    if model is None:
        raise DeployError(f"function {spec.name}: {package}.settings declares no Env model")
    return model


def check_environment(spec: FunctionSpec) -> list[str]:
    """Fail naming the function and each variable its code reads that the resource does not set (or sets badly).

    Returns warnings for variables the resource sets that the code never reads.
    """
    model = env_model(spec)
    missing = [name for name in model.model_fields if name not in spec.environment]
    if missing:
        raise DeployError(
            f"function {spec.name} ({spec.resource_name}): environment variable{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} read by {model.__module__}.{model.__name__} "
            f"{'are' if len(missing) > 1 else 'is'} not set on the resource")
    try:
        model.model_validate({k: v for k, v in spec.environment.items() if k in model.model_fields})
    except ValidationError as exc:
        bad = "; ".join(f"{e['loc'][0]}={spec.environment.get(str(e['loc'][0]))!r}: {e['msg']}" for e in exc.errors())
        raise DeployError(f"function {spec.name} ({spec.resource_name}): invalid environment: {bad}") from None
    extra = sorted(set(spec.environment) - set(model.model_fields) - set(RUNTIME_ENVIRONMENT))
    return [f"function {spec.name}: sets {', '.join(extra)} which its code never reads"] if extra else []


@dataclass
class InvokeResult:
    """The outcome of one invocation, as the Lambda service reports it."""

    request_id: str
    ok: bool
    payload: Any = None
    error: dict[str, Any] | None = None
    timed_out: bool = False
    duration_ms: float = 0.0
    throttled: bool = False
    """Lambda refused the call (TooManyRequestsException): the function was at its concurrency limit. Nothing ran,
    so a caller may retry it (the event queue of an asynchronous invocation does, up to the event's maximum age)."""

    @property
    def function_error(self) -> str | None:
        return None if self.ok or self.throttled else "Unhandled"


def function_specs(graph: Graph) -> list[FunctionSpec]:
    return [FunctionSpec.from_resource(r) for r in graph.of_type(FUNCTION)]


def check_functions(graph: Graph) -> list[str]:
    """Check every function's handler and environment against its code's contract (before anything starts)."""
    warnings: list[str] = []
    for spec in function_specs(graph):
        warnings += check_environment(spec)
    return warnings

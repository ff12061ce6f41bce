"""Load a function group's environment-variable model (`Env`) with an error that names what is missing.

Each `functions/<group>/settings.py` declares `class Env(BaseModel)` whose field names are exactly the variables
its code reads; the Pulumi component sets exactly those names and the local twin checks them against the model.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, ValidationError

E = TypeVar("E", bound=BaseModel)

#: Settings of the libraries in the layer that every function's environment carries beside its group's `Env`
#: (`infra.lambdas` sets them on each function; the twin's contract check does not count them as unread).
RUNTIME_ENVIRONMENT: Mapping[str, str] = {
    # pydantic looks for plugins through importlib.metadata when it builds its first model, reading the metadata of
    # every distribution on the path, in each cold start's first invocation; no function uses a pydantic plugin.
    "PYDANTIC_DISABLE_PLUGINS": "__all__",
}

#: The description of every group's `OTEL_EXPORTER_OTLP_ENDPOINT` field (the stack's `otlpEndpoint`).
TRACING_ENDPOINT = "OTLP/HTTP base URL the function's spans go to (functions.common.tracing reads it); empty: off"


class ConfigurationError(RuntimeError):
    """The function's environment does not satisfy its `Env` model (a deployment bug, not a client error)."""


def load_env(model: type[E], environ: Mapping[str, str] | None = None) -> E:
    """Build `model` from the variables named by its fields (others are ignored); fail naming every bad one."""
    source = os.environ if environ is None else environ
    values = {name: source[name] for name in model.model_fields if name in source}
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        missing = sorted(str(e["loc"][0]) for e in exc.errors() if e["type"] == "missing" and e["loc"])
        invalid = sorted(
            f"{e['loc'][0]}={values.get(str(e['loc'][0]))!r} ({e['msg']})"
            for e in exc.errors()
            if e["type"] != "missing" and e["loc"]
        )
        parts = []
        if missing:
            parts.append(f"missing environment variables: {', '.join(missing)}")
        if invalid:
            parts.append(f"invalid environment variables: {'; '.join(invalid)}")
        raise ConfigurationError(f"{model.__module__}.{model.__name__}: {'; '.join(parts)}") from None


def env_names(model: type[BaseModel]) -> frozenset[str]:
    """The environment variable names `model` reads (what the Pulumi component must set)."""
    return frozenset(model.model_fields)

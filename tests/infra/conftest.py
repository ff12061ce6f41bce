"""The program under the recording mocks: every test gets a fresh runtime and the stack config it asks for."""

from __future__ import annotations

import runpy
from collections.abc import Callable
from typing import Any

import pytest

from infra.config import PROJECT_DIR, stack_config_values
from sim.capture import Graph, capture

# Plaintext stand-ins for the stack's encrypted secrets (the CLI would decrypt the real ones).
TEST_SECRETS = {"jwtSigningKey": "k" * 40, "dbPassword": "p" * 24}


def run_main() -> None:
    runpy.run_path(str(PROJECT_DIR / "__main__.py"), run_name="__main__")


Capture = Callable[..., Graph]


@pytest.fixture
def program_graph() -> Capture:
    """Run `program` (default: __main__.py) with the dev stack's config plus `overrides`; return its graph."""

    def _capture(overrides: dict[str, Any] | None = None, *, program: Callable[[], None] = run_main,
                 stack: str = "dev", secrets: dict[str, str] | None = None) -> Graph:
        values = stack_config_values(stack, overrides, secrets=TEST_SECRETS if secrets is None else secrets)
        return capture(program, values, stack=stack)

    return _capture


@pytest.fixture(scope="module")
def dev_graph() -> Graph:
    """The dev stack's whole graph, captured once per module (read-only)."""
    return capture(run_main, stack_config_values("dev", secrets=TEST_SECRETS), stack="dev")


@pytest.fixture
def sent_aliases(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Resource name -> the aliases the program sent with it (filled by the captures the test then runs)."""
    from sim.capture import _RecordingMonitor

    aliases: dict[str, list[str]] = {}
    original = _RecordingMonitor.RegisterResource

    def spy(self: _RecordingMonitor, request: object) -> object:
        # However the SDK sends them (alias specs or alias URNs), their text names the old resource.
        sent = [*(getattr(request, "aliasSpecs", None) or []), *(getattr(request, "aliases", None) or [])]
        aliases[str(getattr(request, "name", ""))] = [str(alias) for alias in sent]
        return original(self, request)

    monkeypatch.setattr(_RecordingMonitor, "RegisterResource", spy)
    return aliases

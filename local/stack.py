"""The twin's view of the program: run `__main__.py` under the recording mocks with the stack's config.

The same loader the tests use (`infra.config.stack_config_values`) applies Pulumi.yaml defaults and
`Pulumi.<stack>.yaml`. Encrypted stack secrets cannot be decrypted here, so the twin generates plaintext
stand-ins once per state folder (`secrets.json`, mode 0600) and reuses them, so tokens signed before a
restart still verify after it.
"""

from __future__ import annotations

import json
import os
import runpy
import secrets as pysecrets
from collections.abc import Callable
from pathlib import Path

from infra.config import PROJECT_DIR, SECRET_KEYS, SECRET_MIN_LENGTH, stack_config_values
from sim.capture import Graph, capture

Program = Callable[[], None]


def program_file(path: Path) -> Program:
    """A Pulumi program file run as `pulumi up` runs `__main__.py`."""

    def run() -> None:
        runpy.run_path(str(path), run_name="__main__")

    return run


def main_program(project_dir: Path = PROJECT_DIR) -> Program:
    """The Pulumi program itself."""
    return program_file(project_dir / "__main__.py")


def local_secrets(state_dir: Path) -> dict[str, str]:
    """Plaintext stand-ins for the stack's secrets, generated once per state folder."""
    path = state_dir / "secrets.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    changed = False
    for key in sorted(SECRET_KEYS):
        if len(stored.get(key, "")) < SECRET_MIN_LENGTH[key]:
            stored[key] = pysecrets.token_hex(max(32, SECRET_MIN_LENGTH[key]))
            changed = True
    if changed:
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(stored, fh, indent=2)
    return stored


def stack_file(stack: str, project_dir: Path = PROJECT_DIR) -> Path:
    return project_dir / f"Pulumi.{stack}.yaml"


def capture_stack(stack: str, state_dir: Path, *, program: Program | None = None,
                  project_dir: Path = PROJECT_DIR) -> Graph:
    """The stack's resource graph with Outputs resolved (raises `ConfigError` naming a bad key)."""
    values = stack_config_values(stack, project_dir=project_dir, secrets=local_secrets(state_dir))
    return capture(program or main_program(project_dir), values, stack=stack)

"""Every function group has one file shape (see `functions/__init__.py`): the same module name for the same job."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
SHAPE = {"handlers", "logic", "ports", "adapters", "models", "errors", "settings", "permissions"}
# Jobs only one group has, each named for what it does.
EXTRAS = {
    "images": {"imaging", "keys"},
    "auth": {"passwords", "tokens"},
    "orders": {"service_token"},
}
# `common` is shared plumbing, not a group: its `aws` is the boto3 client factory every adapter uses.
COMMON = {"aws", "errors", "http", "lazy_packages", "logging", "page_tokens", "settings", "tracing"}
IO_PACKAGES = {"boto3", "botocore", "requests", "urllib3"}
GROUPS = sorted(p.parent.name for p in FUNCTIONS.glob("*/__init__.py") if p.parent.name != "common")


def modules(group: str) -> set[str]:
    return {p.stem for p in (FUNCTIONS / group).glob("*.py") if p.stem != "__init__"}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.partition(".")[0])
    return found


def test_the_groups_are_the_ones_the_infra_deploys() -> None:
    assert GROUPS == ["auth", "images", "orders", "todos"]


@pytest.mark.parametrize("group", GROUPS)
def test_group_modules_are_named_by_the_shared_shape(group: str) -> None:
    unknown = modules(group) - SHAPE - EXTRAS.get(group, set())
    assert not unknown, f"functions/{group}: {sorted(unknown)} are not in the shape {sorted(SHAPE)}"
    # Every group has entry points, rules over ports, an env-var contract and something to talk to.
    assert {"handlers", "logic", "ports", "adapters", "settings"} <= modules(group), f"functions/{group}"


def test_common_holds_only_the_shared_plumbing() -> None:
    assert modules("common") == COMMON


@pytest.mark.parametrize("group", [*GROUPS, "common"])
def test_only_adapters_import_boto3_or_requests(group: str) -> None:
    allowed = {"adapters"} if group != "common" else {"aws"}
    offenders = {
        path.stem: sorted(imported_packages(path) & IO_PACKAGES)
        for path in (FUNCTIONS / group).glob("*.py")
        if path.stem not in allowed and imported_packages(path) & IO_PACKAGES
    }
    assert not offenders, f"functions/{group}: {offenders}"


@pytest.mark.parametrize("group", GROUPS)
def test_ports_hold_protocols_and_no_adapter(group: str) -> None:
    assert not imported_packages(FUNCTIONS / group / "ports.py") & IO_PACKAGES
    port = importlib.import_module(f"functions.{group}.ports")
    protocols = [v for v in vars(port).values()
                 if isinstance(v, type) and v.__module__ == port.__name__ and getattr(v, "_is_protocol", False)]
    assert protocols, f"functions/{group}/ports.py defines no Protocol"

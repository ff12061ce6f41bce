"""How a cloud rule is declared and dispatched, and the input readers rules share.

A rule is a function of one resource's (resolved) inputs, registered for its type token with `@rule(type)`, that
raises `CloudRejection(why)` for what the provider would refuse. `check` runs a type's rules and prefixes the
reason with the resource's type and name, so the message reads like the provider's error at `pulumi up`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Rule = Callable[[dict[str, Any]], None]
_RULES: dict[str, list[Rule]] = {}
EVERY_TYPE = "*"
"""Register a rule under this token to run it for every resource (e.g. Kubernetes object names)."""


class CloudRejection(ValueError):
    """The provider would refuse this resource: `why`, and once `check` has caught it, which `resource`."""

    def __init__(self, why: str, *, resource: str | None = None) -> None:
        super().__init__(f"{resource}: {why}" if resource else why)
        self.why = why
        self.resource = resource


def rule(type_token: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        _RULES.setdefault(type_token, []).append(fn)
        return fn

    return register


def check(type_token: str, name: str, inputs: dict[str, Any]) -> None:
    """Run every rule for `type_token` on `inputs`; a rejection is re-raised naming `type_token` and `name`."""
    for fn in _RULES.get(type_token, []) + _RULES.get(EVERY_TYPE, []):
        try:
            fn(inputs)
        except CloudRejection as exc:
            raise CloudRejection(exc.why, resource=f"{type_token} {name!r}") from exc


def whole(value: Any) -> int | None:
    """An integer input as the engine delivers it (protobuf numbers arrive as floats), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
        return None
    return int(value)


_SECRET_SIG = "4dabf18193072939515e22adb298388d"  # pulumi.runtime.rpc's marker of a secret value


def revealed(value: Any) -> Any:
    """A secret input as the provider sees it (the engine hands secrets to the mock wrapped)."""
    if isinstance(value, dict) and value.get(_SECRET_SIG) == "1b47061264138c4ac30d75fd1eb44270":
        return revealed(value.get("value"))
    return value

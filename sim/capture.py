"""Run the Pulumi program under the SDK's mocks and capture its resource graph.

One recording mock serves the unit tests (`tests/`) and the local twin (`local/`): every resource's type, name,
inputs, parent, dependencies and protect flag, with Outputs resolved, plus the stack's exports. The mock plays the
provider's part too: it computes the outputs AWS and Kubernetes would (`sim.outputs`, `sim.invokes`) and rejects
inputs the real APIs would reject (`sim.rules`), so a wiring bug fails here rather than at `pulumi up`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

from infra.config import PROJECT, ConfigError, ConfigValues
from sim import invokes, rules
from sim import outputs as mock_outputs


@dataclass
class Resource:
    """One registered resource as the engine saw it (inputs) and as the mock provider answered (outputs)."""

    urn: str
    type: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    id: str
    parent: str | None
    custom: bool
    provider: str | None
    dependencies: list[str] = field(default_factory=list)
    protect: bool = False
    retain_on_delete: bool = False
    secret_paths: list[str] = field(default_factory=list)
    """Input paths (`a.b[0].c`) the engine received marked secret (encrypted in the state); `inputs` holds them
    unwrapped. A secret inside a map or list marks the whole map or list."""

    @property
    def physical_name(self) -> str:
        return str(self.outputs.get("name") or self.outputs.get("bucket") or self.id)


@dataclass
class Graph:
    """Everything one run of the program registered, in registration order, and the stack's exports."""

    resources: list[Resource]
    exports: dict[str, Any]
    region: str

    def of_type(self, type_token: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str, name: str | None = None) -> Resource:
        found = [r for r in self.of_type(type_token) if name is None or r.name == name]
        if len(found) != 1:
            raise LookupError(f"expected one {type_token} named {name!r}, found {[r.name for r in found]}")
        return found[0]

    def by_urn(self, urn: str) -> Resource:
        for resource in self.resources:
            if resource.urn == urn:
                return resource
        raise LookupError(urn)

    def children(self, parent: Resource) -> Iterator[Resource]:
        return (r for r in self.resources if r.parent == parent.urn)

    def find_by_output(self, key: str, value: Any) -> Resource:
        for resource in self.resources:
            if resource.outputs.get(key) == value:
                return resource
        raise LookupError(f"no resource with {key}={value!r}")


class RecordingMocks(pulumi.runtime.Mocks):
    """Answers resource registrations (`sim.outputs`) and invokes (`sim.invokes`) as AWS/Kubernetes would, after
    checking the inputs against what they would reject (`sim.rules`)."""

    def __init__(self, region: str) -> None:
        self.region = region
        self.answers: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        inputs = dict(args.inputs)
        if args.resource_id and not inputs:  # a `Resource.get(...)` read of a live object, not a registration
            return mock_outputs.read(args.typ, args.name, str(args.resource_id), self.region)
        rules.check(args.typ, args.name, inputs)
        resource_id, answered = mock_outputs.answer(mock_outputs.Registration(args.typ, args.name, inputs, self.region))
        self.answers[(args.typ, args.name)] = (resource_id, answered)
        return resource_id, answered

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        return invokes.answer(args.token, dict(args.args), self.region)


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """The SDK's mock monitor, keeping what its Mocks interface drops: parents, dependencies, exports."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recorded: list[Resource] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        inputs = rpc.deserialize_properties(request.object)
        outputs: dict[str, Any] = {}
        rid: str = ""
        if request.custom:
            rid, outputs = self.mocks.answers[(request.type, request.name)]  # type: ignore[attr-defined]
        self.recorded.append(Resource(
            urn=response.urn, type=request.type, name=request.name, inputs=_plain(inputs), outputs=_plain(outputs),
            id=rid, parent=request.parent or None, custom=bool(request.custom), provider=request.provider or None,
            dependencies=list(request.dependencies), protect=bool(request.protect),
            retain_on_delete=bool(request.retainOnDelete), secret_paths=_secret_paths(inputs),
        ))
        return response


def _secret_paths(value: Any, path: str = "") -> list[str]:
    """Where `value` (deserialized inputs, secrets still wrapped) holds secret-marked values."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return [path]
        return [p for k, v in value.items() for p in _secret_paths(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _secret_paths(v, f"{path}[{i}]")]
    return []


def _plain(value: Any) -> Any:
    """Secrets unwrapped and nested values copied, so the graph is plain JSON-able data."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return _plain(value.get("value"))
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, pulumi.AssetArchive):
        return {"assets": {k: _plain(v) for k, v in value.assets.items()}}
    if isinstance(value, (pulumi.FileAsset, pulumi.FileArchive)):
        return {"path": value.path}
    if isinstance(value, pulumi.StringAsset):
        return {"text": value.text}
    return value


def capture(program: Callable[[], None], config: ConfigValues, *, stack: str = "dev", preview: bool = False) -> Graph:
    """Run `program` (which registers resources) under the recording mocks with `config`, return its graph.

    Each call gets a fresh event loop and fresh runtime settings, so captures do not leak into each other.
    """
    region = config.values.get("aws:region", "eu-west-1")
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        pulumi.runtime.settings.reset_options(project=PROJECT, stack=stack, preview=preview)
        pulumi.runtime.set_all_config(dict(config.values), list(config.secret_keys))
        mocks = RecordingMocks(region)
        monitor = _RecordingMonitor(mocks)
        pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor)

        async def run() -> dict[str, Any]:
            from pulumi.runtime.stack import wait_for_rpcs

            program()
            await wait_for_rpcs()
            root = pulumi.runtime.get_root_resource()
            exported = getattr(root, "outputs", {})
            resolved = {k: await pulumi.Output.from_input(v).future() for k, v in exported.items()}
            await wait_for_rpcs()
            return resolved

        try:
            exports = loop.run_until_complete(run())
        except Exception as exc:
            # A bad secret fails inside an apply that a resource consumes; Pulumi wraps it in "While processing
            # resource ..." ValueErrors. Surface the ConfigError naming the key, as the CLI's message leads with it.
            cause = _config_error(exc)
            if cause is not None:
                raise cause from None
            raise
        return Graph(resources=monitor.recorded, exports=_plain(exports), region=region)
    finally:
        # A program that failed leaves Output tasks pending; cancel them so nothing leaks into the next capture.
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        pulumi.runtime.settings.reset_options()
        pulumi.runtime.set_all_config({}, [])
        loop.close()
        asyncio.set_event_loop(None)


def _config_error(exc: BaseException) -> ConfigError | None:
    """The ConfigError an exception was raised from, if any (causes can form cycles across awaiting tasks)."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        if isinstance(current, ConfigError):
            return current
        seen.add(id(current))
        pending += [current.__cause__, current.__context__]
    return None


def graph_json(graph: Graph) -> str:
    """The graph as JSON (what `python -m local plan --json` shows)."""
    return json.dumps({"exports": graph.exports, "resources": [r.__dict__ for r in graph.resources]},
                      indent=2, default=str)

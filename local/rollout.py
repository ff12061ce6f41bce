"""The twin's rollout: `canaryWeight` written to `Pulumi.<stack>.yaml` as `pulumi config set` writes it, the twin's
config watcher re-deploys it into Envoy, and v2 is judged from Envoy's own stats (:mod:`local.envoy_metrics`).

* :func:`set_stack_config` edits one key in place: the value as the CLI stores it (a string: ``"50"``), every
  other line (comments, other keys, secrets) byte for byte as it was, the file replaced atomically so the
  watcher never reads half of it.
* :class:`StackFileApplier` is :class:`mesh.rollout.Applier` for the twin: apply writes the file and waits
  for an injected readiness probe (:func:`mesh_weight_probe` reads what the running twin's mesh serves).
* :func:`add_arguments` / :func:`cmd_rollout` are `python -m local rollout [--steps 10,50,100]`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from infra.config import PROJECT, PROJECT_DIR, ConfigError, project_schema
from local.state import MESH_FILE, ROLLOUT_FILE, write_json
from mesh.analysis import AnalysisSettings
from mesh.rollout import DEFAULT_STEPS, ApplyError, Clock, MetricSource, SystemClock, parse_steps, rollout

WEIGHT_KEY = "canaryWeight"


def _yaml_string(value: str) -> str:
    """A YAML double-quoted scalar, as the CLI's YAML encoder writes a string that would otherwise read as a
    number or boolean; ``json.dumps`` gives exactly that form for plain text."""
    return json.dumps(value)


def set_stack_config(path: Path, key: str, value: str, project: str = PROJECT) -> None:
    """Set ``<project>:<key>`` in a stack file to the string ``value``, as `pulumi config set <key> <value>` does.

    Only that key's line changes (a trailing comment stays); a missing key is appended to the ``config:`` block
    and a missing block is added. Refuses to overwrite a secret or a structured value.
    """
    text = path.read_bytes().decode() if path.exists() else ""  # bytes: keep CRLF files CRLF
    lines = text.splitlines(keepends=True)
    qualified = f"{project}:{key}"
    block = _config_block(lines)
    rendered = f"{qualified}: {_yaml_string(value)}"
    if block is None:
        lines += ([] if not lines or lines[-1].endswith("\n") else ["\n"]) + ["config:\n", f"  {rendered}\n"]
    else:
        start, end, indent = block
        for i in range(start, end):
            match = re.match(rf"^(\s+)({re.escape(qualified)}|{re.escape(key)}):(.*?)(\s+#.*)?(\r?\n)?$", lines[i])
            if match:
                if not match[3].strip():
                    raise ConfigError(f"{qualified} in {path.name} is a secret or structured value; not overwritten")
                newline = match[5] or ""
                lines[i] = f"{match[1]}{qualified}: {_yaml_string(value)}{match[4] or ''}{newline}"
                break
        else:
            at = end
            while at > start and not lines[at - 1].strip():
                at -= 1  # append after the block's last key, not after trailing blank lines
            if at > 0 and not lines[at - 1].endswith("\n"):
                lines[at - 1] += "\n"
            lines.insert(at, f"{indent}{rendered}\n")
    _replace(path, "".join(lines))
    written = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    if written.get(qualified) != value:  # the edit must read back as the CLI's would
        raise ConfigError(f"{path.name}: {qualified} reads back as {written.get(qualified)!r}, not {value!r}")


def _config_block(lines: list[str]) -> tuple[int, int, str] | None:
    """(first line, end, indent of its keys) of the top-level ``config:`` mapping, or None."""
    top = next((i for i, line in enumerate(lines) if re.match(r"^config:\s*(#.*)?$", line.rstrip("\r\n"))), None)
    if top is None:
        return None
    end, indent = top + 1, None
    for j in range(top + 1, len(lines)):
        stripped = lines[j].strip()
        if stripped and not lines[j][0].isspace() and not stripped.startswith("#"):
            break  # the next top-level key ends the block
        end = j + 1
        if indent is None and stripped and not stripped.startswith("#"):
            indent = lines[j][: len(lines[j]) - len(lines[j].lstrip())]
    return top + 1, end, indent or "  "


def _replace(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            fh.write(text)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def stack_weight(path: Path, project_dir: Path = PROJECT_DIR) -> int:
    """``canaryWeight`` as the CLI resolves it: the stack file's value, else Pulumi.yaml's default."""
    config = ((yaml.safe_load(path.read_text()) or {}).get("config") or {}) if path.exists() else {}
    for key in (f"{PROJECT}:{WEIGHT_KEY}", WEIGHT_KEY):
        if key in config:
            return int(config[key])
    return int(project_schema(project_dir).get(WEIGHT_KEY, {}).get("default", 0))


class StackFileApplier:
    """:class:`mesh.rollout.Applier` for the twin: the stack file is the only thing it writes."""

    def __init__(self, stack_file: Path, *, ready: Callable[[int], bool], metrics: Callable[[], MetricSource],
                 project_dir: Path = PROJECT_DIR, timeout: float = 30.0, poll: float = 0.1,
                 clock: Clock | None = None) -> None:
        self.stack_file = stack_file
        self.ready = ready
        self._metrics = metrics
        self.project_dir = project_dir
        self.timeout = timeout
        self.poll = poll
        self.clock = clock or SystemClock()

    def current_weight(self) -> int:
        return stack_weight(self.stack_file, self.project_dir)

    def apply(self, weight: int) -> None:
        set_stack_config(self.stack_file, WEIGHT_KEY, str(weight))
        deadline = self.clock.monotonic() + self.timeout
        while not self.ready(weight):
            if self.clock.monotonic() >= deadline:
                raise ApplyError(f"the twin did not apply canaryWeight {weight} within {self.timeout:g} s "
                                 f"(is `make local` running on this stack?)")
            self.clock.sleep(self.poll)

    def metrics(self) -> MetricSource:
        return self._metrics()


def read_mesh_state(state_dir: Path) -> dict[str, Any] | None:
    path = state_dir / MESH_FILE
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None  # not running yet, or caught between two writes


def canary_subset(state: dict[str, Any]) -> dict[str, Any]:
    """The canary's subset entry (weight, Envoy cluster) in the twin's mesh state."""
    canary = state.get("canary") or {}
    subsets = canary.get("subsets") or []
    if not subsets:
        raise ApplyError("the running twin's mesh has no weighted VirtualService (no canary)")
    return next((s for s in subsets if s.get("subset") == canary.get("canarySubset")), subsets[-1])


def mesh_weight_probe(state_dir: Path) -> Callable[[int], bool]:
    """Ready when the twin's mesh state says Envoy serves the canary subset at ``weight`` (the twin writes the
    state after Envoy has taken the new routes)."""
    def ready(weight: int) -> bool:
        state = read_mesh_state(state_dir)
        return state is not None and int(canary_subset(state).get("weight", -1)) == weight

    return ready


def envoy_metrics(state_dir: Path) -> Callable[[], MetricSource]:
    """A fresh :class:`local.envoy_metrics.EnvoySource` on the canary cluster of the running twin's Envoy."""
    def make() -> MetricSource:
        from local.envoy_metrics import EnvoySource

        state = read_mesh_state(state_dir)
        if state is None:
            raise ApplyError(f"no running twin mesh in {state_dir} (start it with `make local`)")
        return EnvoySource(str(state["adminUrl"]), str(canary_subset(state)["cluster"]))

    return make


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", default="dev", help="stack name: writes Pulumi.<stack>.yaml (default dev)")
    parser.add_argument("--steps", default=",".join(map(str, DEFAULT_STEPS)),
                        help="comma-separated canaryWeight steps ending at 100 (default 10,50,100)")
    parser.add_argument("--state-dir", type=Path, default=PROJECT_DIR / ".local",
                        help="the running twin's state folder (default .local/)")
    parser.add_argument("--config-dir", type=Path, default=PROJECT_DIR,
                        help="folder holding Pulumi.yaml and Pulumi.<stack>.yaml (default: this checkout)")
    parser.add_argument("--apply-timeout", type=float, default=30.0,
                        help="seconds to wait for the twin to apply each weight (default 30)")


def cmd_rollout(args: argparse.Namespace, settings: AnalysisSettings | None = None, *,
                clock: Clock | None = None) -> int:
    """`python -m local rollout`: one JSON line per decision on stdout, the outcome on stderr, the walk's code."""
    from infra.rollout import analysis_settings

    try:
        steps = parse_steps(args.steps)
        settings = settings or analysis_settings(args.stack, args.config_dir)
    except (ValueError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    applier = StackFileApplier(args.config_dir / f"Pulumi.{args.stack}.yaml", ready=mesh_weight_probe(args.state_dir),
                               metrics=envoy_metrics(args.state_dir), project_dir=args.config_dir,
                               timeout=args.apply_timeout, clock=clock)
    started = time.monotonic()
    progress = RolloutProgress(args.state_dir / ROLLOUT_FILE, steps)
    result = rollout(steps, applier, settings, clock, emit=progress.emit)
    progress.finish(result.exit_code, result.final_weight)
    print(f"{result.message} ({time.monotonic() - started:.1f} s)", file=sys.stderr)
    return result.exit_code


# The walk's exit codes (mesh.rollout) as the live page names the outcome.
_OUTCOMES = {0: "complete", 1: "rolled back", 3: "held"}


class RolloutProgress:
    """Prints each decision as its JSON line and keeps `<state>/rollout.json` (steps, weight, state, decisions)
    current for the twin's live page, which renders it while the walk runs."""

    def __init__(self, path: Path, steps: Sequence[int]) -> None:
        self.path, self.steps = path, list(steps)
        self.decisions: list[dict[str, Any]] = []
        self.weight: int | None = None
        self._write("running")

    def emit(self, line: str) -> None:
        print(line, flush=True)
        decision = json.loads(line)
        self.decisions.append(decision)
        self.weight = int(decision.get("step", self.weight or 0))
        self._write("running")

    def finish(self, exit_code: int, final_weight: int) -> None:
        self.weight = final_weight
        self._write(_OUTCOMES.get(exit_code, "failed"))

    def _write(self, state: str) -> None:
        if self.path.parent.is_dir():  # no state folder, no twin and no page: the JSON lines are the record
            write_json(self.path, {"steps": self.steps, "weight": self.weight, "state": state,
                                   "decisions": self.decisions})

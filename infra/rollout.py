"""`python -m infra.rollout --stack dev [--steps 10,50,100]`: the canary walk on the real cluster.

Each step is a real `pulumi up` through the Automation API (`canaryWeight` set in the stack's config exactly as
`pulumi config set canaryWeight N` does, then `up`, streamed to stderr), then a window of v2's Istio metrics
from the in-cluster Prometheus through the Kubernetes API's service proxy, with the kubeconfig the stack
exports. The walk and the verdict are :mod:`mesh.rollout` and :mod:`mesh.analysis`, shared with the twin's
`python -m local rollout`; decisions go to stdout as JSON lines. Exit 0 at 100, 1 rolled back to 0, 3 held
(not enough data, by the walk's own window or by the gate inside `pulumi up`), 2 bad arguments or configuration.

Not imported by `__main__.py`: it drives the program, it is not part of it. It needs the `pulumi` CLI on PATH.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from pulumi import automation as auto

from infra import wiring
from infra.config import PROJECT_DIR, ConfigError, parse_stack_config, project_schema, stack_config_values
from infra.prometheus import PrometheusService, PrometheusSource, kube_access
from mesh.analysis import HELD_TAG, AnalysisSettings, CanaryTarget, canary_target
from mesh.canary import CanarySettings
from mesh.rollout import DEFAULT_STEPS, ApplyError, ApplyHeld, Clock, parse_steps, rollout

WEIGHT_KEY = "canaryWeight"


class AutomationStack(Protocol):
    """The part of :class:`pulumi.automation.Stack` the applier uses (a fake stands in for it in tests)."""

    def set_config(self, key: str, value: auto.ConfigValue, *, path: bool = False) -> None: ...

    def get_config(self, key: str, *, path: bool = False) -> auto.ConfigValue: ...

    def up(self, *, on_output: Callable[[str], Any] | None = ...) -> Any: ...

    def outputs(self) -> Mapping[str, auto.OutputValue]: ...


def _write(stream: Any) -> Callable[[str], None]:
    """A line writer for a CLI stream (infra/ has no print: the program itself logs through Pulumi)."""
    def write(line: str) -> None:
        stream.write(line.rstrip("\n") + "\n")
        stream.flush()
    return write


def _stderr(line: str) -> None:
    _write(sys.stderr)(line)  # looked up per line: whoever redirected sys.stderr since import gets it


class AutomationApplier:
    """:class:`mesh.rollout.Applier` for a real stack: set the weight, run `pulumi up`, read the stack's outputs.

    `apply` returns when `up` does: pulumi-kubernetes has then applied the VirtualService, and istiod pushes
    routes to the proxies within about a second, well inside any analysis window.
    """

    def __init__(self, stack: AutomationStack, *, prometheus: PrometheusService | None = None,
                 target: CanaryTarget | None = None, on_output: Callable[[str], Any] = _stderr) -> None:
        self.stack = stack
        self.prometheus = prometheus or PrometheusService()
        self.target = target
        self.on_output = on_output

    def current_weight(self) -> int:
        """What the last successful update exported; before any update, the stack's config (or its default)."""
        outputs = self.stack.outputs()
        if WEIGHT_KEY in outputs:
            return int(outputs[WEIGHT_KEY].value)
        try:
            return int(self.stack.get_config(WEIGHT_KEY).value)
        except auto.CommandError:
            return int(project_schema().get(WEIGHT_KEY, {}).get("default", 0))

    def apply(self, weight: int) -> None:
        # Plain text, as `pulumi config set canaryWeight 50` stores it (Pulumi.<stack>.yaml: "50").
        self.stack.set_config(WEIGHT_KEY, auto.ConfigValue(value=str(weight), secret=False))
        try:
            self.stack.up(on_output=self.on_output)
        except auto.CommandError as exc:
            # The canary gate fails the update with the metric, its value and the ceiling on stderr, tagged when
            # it only lacked data (then the walk holds instead of rolling back).
            reason = _stderr_of(exc)
            failure = ApplyHeld if HELD_TAG in reason else ApplyError
            raise failure(f"pulumi up with canaryWeight {weight} failed: {reason[-800:]}") from exc

    def metrics(self) -> PrometheusSource:
        outputs = self.stack.outputs()
        kubeconfig = str(outputs["kubeconfig"].value)
        target = self.target or canary_target(CanarySettings(namespace=str(outputs["canaryNamespace"].value)))
        return PrometheusSource(lambda: kube_access(kubeconfig), self.prometheus, target)


def _stderr_of(exc: auto.CommandError) -> str:
    """CommandError keeps only ``str(CommandResult)`` (code, stdout, stderr); the stderr part is the reason."""
    text = str(exc)
    marker = "\n stderr: "
    return (text[text.rfind(marker) + len(marker):] if marker in text else text).strip()


def analysis_settings(stack: str, project_dir: Path = PROJECT_DIR) -> AnalysisSettings:
    """The stack's analysis settings as the CLI resolves them (Pulumi.yaml defaults, then the stack file), read
    and validated by the program's own config loader, so a bad value fails naming its key as at preview."""
    cfg = parse_stack_config(stack_config_values(stack, project_dir=project_dir).project_raw(), stack=stack)
    return wiring.analysis_settings(cfg)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m infra.rollout", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", required=True, help="the stack to walk (Pulumi.<stack>.yaml)")
    parser.add_argument("--steps", default=",".join(map(str, DEFAULT_STEPS)),
                        help="comma-separated canaryWeight steps ending at 100 (default 10,50,100)")
    parser.add_argument("--work-dir", type=Path, default=PROJECT_DIR, help="the Pulumi project folder")
    service = PrometheusService()
    parser.add_argument("--prometheus-namespace", default=service.namespace)
    parser.add_argument("--prometheus-service", default=service.name)
    parser.add_argument("--prometheus-port", default=service.port)
    return parser


def main(argv: list[str] | None = None, *, select: Callable[..., AutomationStack] = auto.select_stack,
         clock: Clock | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        steps = parse_steps(args.steps)
        settings = analysis_settings(args.stack, args.work_dir)
    except (ValueError, ConfigError) as exc:
        _write(sys.stderr)(f"error: {exc}")
        return 2
    stack = select(stack_name=args.stack, work_dir=str(args.work_dir))
    applier = AutomationApplier(stack, prometheus=PrometheusService(
        namespace=args.prometheus_namespace, name=args.prometheus_service, port=str(args.prometheus_port)))
    result = rollout(steps, applier, settings, clock, emit=_write(sys.stdout))
    _write(sys.stderr)(result.message)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())

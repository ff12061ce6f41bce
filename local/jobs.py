"""The graph's Kubernetes Jobs as the twin runs them: one process each, to completion, before any Deployment.

A Job's container names its code by `command` (`python -m <module>`, a module of this checkout; the image only
says which checkout files it carries, and every service image carries `services/common`). Its environment is the
graph's, resolved and translated as a Deployment's is (`local.kube.container_env`), so a bootstrap Job whose env
reads the wrong Secret fails here as it would in the cluster. A failed run is retried up to `backoffLimit` times
with a doubling pause, and the whole Job has `activeDeadlineSeconds`, as the Job controller does; a Job that still
fails stops the deploy with the end of its log.

The PostgreSQL engine runs them once the database is up: this graph's only Job is the database bootstrap, and the
Deployments that log in as its roles wait for it (`depends_on`), which the twin mirrors by running engines in order.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.config import PROJECT_DIR
from local.errors import DeployError
from local.kube import config_maps, container_env, k8s_secrets
from local.processes import LogSink, start_process, stop_process
from sim.capture import Graph, Resource

JOB = "kubernetes:batch/v1:Job"
#: The Job controller's defaults when the spec leaves them out.
DEFAULT_BACKOFF_LIMIT = 6
DEFAULT_DEADLINE_SECONDS = 600.0
FIRST_RETRY_SECONDS = 0.5
PASSTHROUGH = ("PATH", "LANG", "LC_ALL", "TZ", "HOME", "TMPDIR", "SYSTEMROOT")


@dataclass(frozen=True)
class JobSpec:
    name: str
    namespace: str
    module: str
    env: dict[str, str] = field(repr=False)
    backoff_limit: int = DEFAULT_BACKOFF_LIMIT
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def job_module(command: Any, where: str) -> str:
    """`["python", "-m", "services.common.bootstrap"]` -> the module, which must exist in this checkout."""
    words = [str(w) for w in command or []]
    if len(words) != 3 or words[0] not in ("python", "python3") or words[1] != "-m":
        raise DeployError(f"{where}: command {words} is not `python -m <module>`, which is all the twin runs")
    relative = words[2].replace(".", "/")
    if not ((PROJECT_DIR / f"{relative}.py").is_file() or (PROJECT_DIR / relative / "__main__.py").is_file()):
        raise DeployError(f"{where}: module {words[2]} is not in this checkout")
    return words[2]


def _spec(res: Resource, secrets: dict[tuple[str, str], dict[str, str]],
          maps: dict[tuple[str, str], dict[str, str]], translations: Mapping[str, str]) -> JobSpec:
    meta = res.inputs.get("metadata") or {}
    name = str(meta.get("name") or (res.outputs.get("metadata") or {}).get("name") or res.name)
    namespace = str(meta.get("namespace") or "default")
    where = f"Job {namespace}/{name}"
    spec = res.inputs.get("spec") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    if len(containers) != 1:
        raise DeployError(f"{where}: the twin runs Jobs of exactly one container, not {len(containers)}")
    container = containers[0]
    return JobSpec(
        name=name, namespace=namespace, module=job_module(container.get("command"), where),
        env=container_env(container, namespace, secrets, maps, translations, where),
        backoff_limit=int(spec.get("backoffLimit", DEFAULT_BACKOFF_LIMIT)),
        deadline_seconds=float(spec.get("activeDeadlineSeconds", DEFAULT_DEADLINE_SECONDS)),
    )


def job_specs(graph: Graph, translations: Mapping[str, str]) -> list[JobSpec]:
    secrets, maps = k8s_secrets(graph), config_maps(graph)
    return [_spec(r, secrets, maps, translations) for r in graph.of_type(JOB)]


class _Tail:
    """The last lines a Job wrote, for the error that names why it failed."""

    def __init__(self, sink: LogSink, lines: int = 20) -> None:
        self.sink = sink
        self.lines: deque[str] = deque(maxlen=lines)

    def write(self, component: str, line: str, *, console: bool = True) -> None:
        self.lines.append(line.rstrip())
        self.sink.write(component, line, console=console)


def run_job(spec: JobSpec, sink: LogSink) -> int:
    """Run the Job until a pod succeeds; returns how many pods it took. DeployError once it has failed."""
    env = {k: os.environ[k] for k in PASSTHROUGH if k in os.environ}
    env.update(spec.env)
    env["PYTHONUNBUFFERED"] = "1"
    deadline = time.monotonic() + spec.deadline_seconds
    tail = _Tail(sink)
    pause = FIRST_RETRY_SECONDS
    for attempt in range(1, spec.backoff_limit + 2):
        # `tail` passes every line on to the sink and keeps the last ones (a LogSink in all but its files).
        proc = start_process([sys.executable, "-m", spec.module], f"job/{spec.name}", tail,  # type: ignore[arg-type]
                             env=env, cwd=PROJECT_DIR)
        try:
            code = proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except Exception:
            stop_process(proc)
            raise DeployError(f"Job {spec.key}: still running after activeDeadlineSeconds "
                              f"{spec.deadline_seconds:g}; last output:\n" + "\n".join(tail.lines)) from None
        if code == 0:
            sink.write("postgres", f"Job {spec.key} ({spec.module}) completed (pod {attempt})")
            return attempt
        time.sleep(0.1)  # the log pump drains the pipe's last lines after the exit
        sink.write("postgres", f"Job {spec.key}: pod {attempt} exited with {code}")
        if attempt <= spec.backoff_limit:
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause *= 2
    raise DeployError(f"Job {spec.key} ({spec.module}) failed {spec.backoff_limit + 1} times (backoffLimit "
                      f"{spec.backoff_limit}); last output:\n" + "\n".join(tail.lines))

"""The Lambda engine: each `aws:lambda/function:Function` in the graph runs in its own worker processes.

A worker (`local.worker`) gets exactly the function's environment variables from the graph, plus what the Lambda
service itself sets (region, function name, memory size, handler) and, for the emulator, `AWS_ENDPOINT_URL` and
dummy credentials; nothing leaks in from the twin's own environment. Before any worker starts, the graph's
variables are checked against the function group's `Env` model (`functions/<group>/settings.py`), so a wiring
bug (code reads `TABLE_NAME`, the resource does not set it) fails the deploy naming the function and variable.

Invocations run one at a time per worker, as in a Lambda execution environment; a function scales out to a few
workers under concurrent load. A run past the function's timeout kills its worker, is answered as a timeout
(`Task timed out after N seconds`, like Lambda) and a fresh worker takes its place.
"""

from __future__ import annotations

import importlib
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from pydantic import BaseModel, ValidationError

from infra.config import PROJECT_DIR
from local.aws import DUMMY_CREDENTIALS
from local.processes import LogSink, kill_process, pump, start_process, stop_process
from sim.capture import Graph, Resource

FUNCTION = "aws:lambda/function:Function"
# Set by Lambda in every execution environment, the same for every function (the fork server's too).
LAMBDA_CONSTANT_ENV = {"AWS_EXECUTION_ENV": "AWS_Lambda_python3.12", "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand"}
TYPES = (FUNCTION,)
INIT_TIMEOUT_SECONDS = 60.0  # Lambda allows 10 s; a loaded 2-core machine needs more


class DeployError(RuntimeError):
    """The graph cannot run as written (the cloud would fail the same way); the message names what and why."""


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

    @classmethod
    def from_resource(cls, res: Resource) -> FunctionSpec:
        i, o = res.inputs, res.outputs
        variables = ((i.get("environment") or {}).get("variables")) or {}
        return cls(
            resource_name=res.name, name=res.physical_name, arn=str(o.get("arn")), invoke_arn=str(o.get("invokeArn")),
            handler=str(i.get("handler") or ""), environment={k: str(v) for k, v in variables.items()},
            memory_mb=int(i.get("memorySize") or 128), timeout_seconds=float(i.get("timeout") or 3),
        )


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
    extra = sorted(set(spec.environment) - set(model.model_fields))
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

    @property
    def function_error(self) -> str | None:
        return None if self.ok else "Unhandled"


@dataclass
class _Worker:
    proc: Any
    conn: Connection
    started: float = field(default_factory=time.monotonic)


class ForkedProcess:
    """A worker forked by the fork server: the parts of `subprocess.Popen` the twin uses, by pid.

    The fork server reaps its children, so a pid that no longer exists means the worker has exited.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                self.returncode = 0
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0)
            time.sleep(0.01)
        return self.returncode or 0


class ForkServer:
    """`python -m local.worker --zygote`: forks workers with the heavy libraries already imported."""

    def __init__(self, sink: LogSink) -> None:
        self.sink = sink
        self._lock = threading.Lock()
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(PROJECT_DIR),
               "PYTHONUNBUFFERED": "1", "LANG": "en_US.UTF-8", **LAMBDA_CONSTANT_ENV}
        try:
            self.proc = start_process([sys.executable, "-m", "local.worker", "--zygote", str(child.fileno())],
                                      "lambda", sink, env=env, cwd=PROJECT_DIR, pass_fds=[child.fileno()])
        finally:
            child.close()
        self.control = parent

    def spawn(self, env: dict[str, str], component: str) -> tuple[ForkedProcess, socket.socket]:
        ours, theirs = socket.socketpair()
        read_end, write_end = os.pipe()
        try:
            with self._lock:
                socket.send_fds(self.control, [json.dumps({"env": env, "cwd": str(PROJECT_DIR)}).encode()],
                                [theirs.fileno(), write_end])
                reply = self.control.recv(4096)
        finally:
            theirs.close()
            os.close(write_end)
        if not reply:
            os.close(read_end)
            ours.close()
            raise DeployError("the Lambda fork server exited")
        pump(os.fdopen(read_end, "rb"), component, self.sink)
        return ForkedProcess(int(json.loads(reply)["pid"])), ours

    def stop(self) -> None:
        self.control.close()  # the fork server exits on EOF
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            stop_process(self.proc)


class FunctionRuntime:
    """The workers of one function."""

    def __init__(self, spec: FunctionSpec, sink: LogSink, *, aws_endpoint: str, region: str,
                 translations: dict[str, str], max_workers: int = 4, fork_server: ForkServer | None = None) -> None:
        self.spec = spec
        self.fork_server = fork_server
        self.sink = sink
        self.region = region
        self.max_workers = max_workers
        self.env = self._environment(aws_endpoint, translations)
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        self.invocations = 0
        self.errors = 0
        self.timeouts = 0

    def _environment(self, aws_endpoint: str, translations: dict[str, str]) -> dict[str, str]:
        spec = self.spec
        env = {k: translations.get(v, v) for k, v in spec.environment.items()}
        env.update({
            # What the Lambda service sets in every execution environment.
            "AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name, "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"local/[$LATEST]{uuid.uuid4().hex}",
            **LAMBDA_CONSTANT_ENV, "_HANDLER": spec.handler,
            "LAMBDA_TASK_ROOT": str(PROJECT_DIR), "TZ": ":UTC", "LANG": "en_US.UTF-8",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(PROJECT_DIR),
            "PYTHONUNBUFFERED": "1",
            # The emulator instead of AWS.
            "AWS_ENDPOINT_URL": aws_endpoint, **DUMMY_CREDENTIALS,
            "LOCAL_LAMBDA_FUNCTION_ARN": spec.arn,
        })
        return env

    # --- workers ---------------------------------------------------------------------------------------------
    @property
    def component(self) -> str:
        return self.spec.resource_name.removesuffix("-function")

    def _spawn(self) -> _Worker:
        proc: Any
        if self.fork_server is not None:
            proc, parent = self.fork_server.spawn(self.env, self.component)
        else:
            parent, child = socket.socketpair()
            try:
                proc = start_process([sys.executable, "-m", "local.worker", str(child.fileno())], self.component,
                                     self.sink, env=self.env, cwd=PROJECT_DIR, pass_fds=[child.fileno()])
            finally:
                child.close()
        conn = Connection(parent.detach())
        if not conn.poll(INIT_TIMEOUT_SECONDS):
            stop_process(proc)
            raise DeployError(f"function {self.spec.name}: init did not finish in {INIT_TIMEOUT_SECONDS:.0f} s")
        try:
            hello = json.loads(conn.recv_bytes())
        except EOFError:
            proc.wait(timeout=10)
            raise DeployError(f"function {self.spec.name}: worker exited during init "
                              f"(code {proc.returncode})") from None
        if "init_error" in hello:
            stop_process(proc)
            err = hello["init_error"]
            raise DeployError(f"function {self.spec.name}: cannot import handler {self.spec.handler}: "
                              f"{err['errorType']}: {err['errorMessage']}")
        worker = _Worker(proc, conn)
        with self._lock:
            self._all.append(worker)
        return worker

    def start(self) -> None:
        self._idle.put(self._spawn())

    def _discard(self, worker: _Worker, *, kill: bool) -> None:
        with self._lock:
            if worker in self._all:
                self._all.remove(worker)
        worker.conn.close()
        (kill_process if kill else stop_process)(worker.proc)

    def _acquire(self) -> _Worker:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            grow = len(self._all) < self.max_workers
        if grow:
            return self._spawn()  # a cold start, as Lambda scales out
        return self._idle.get()

    def _replace_in_background(self) -> None:
        def run() -> None:
            try:
                if not self._closed:
                    self._idle.put(self._spawn())
            except DeployError as exc:
                self.sink.write("lambda", f"could not restart a worker: {exc}")

        threading.Thread(target=run, daemon=True).start()

    def invoke(self, event: Any, *, timeout: float | None = None) -> InvokeResult:
        """Run the handler on `event` in a free worker; `timeout` (seconds) defaults to the function's."""
        limit = self.spec.timeout_seconds if timeout is None else min(timeout, self.spec.timeout_seconds)
        request_id = str(uuid.uuid4())
        worker = self._acquire()
        self.invocations += 1
        started = time.monotonic()
        deadline_ms = int(time.time() * 1000 + limit * 1000)
        try:
            worker.conn.send_bytes(json.dumps({"requestId": request_id, "event": event, "deadlineMs": deadline_ms})
                                   .encode())
            if not worker.conn.poll(limit):
                # Lambda stops the run at its timeout; the environment is not reused.
                self.timeouts += 1
                self.errors += 1
                self._discard(worker, kill=True)
                self._replace_in_background()
                self.sink.write(self.component, f"{request_id} Task timed out after {limit:.2f} seconds")
                return InvokeResult(request_id, ok=False, timed_out=True, duration_ms=limit * 1000, error={
                    "errorType": "Sandbox.Timedout", "errorMessage": f"Task timed out after {limit:.2f} seconds"})
            answer = json.loads(worker.conn.recv_bytes())
        except (EOFError, OSError, BrokenPipeError) as exc:
            self.errors += 1
            self._discard(worker, kill=True)
            self._replace_in_background()
            return InvokeResult(request_id, ok=False, duration_ms=(time.monotonic() - started) * 1000, error={
                "errorType": "Runtime.ExitError", "errorMessage": f"the runtime exited during the invocation ({exc})"})
        self._idle.put(worker)
        elapsed = (time.monotonic() - started) * 1000
        if answer.get("maxMemoryUsedMb", 0) > self.spec.memory_mb:
            self.sink.write("lambda", f"{self.spec.name} used {answer['maxMemoryUsedMb']} MB, more than its "
                                      f"{self.spec.memory_mb} MB: Lambda would have stopped it")
        if answer["ok"]:
            return InvokeResult(request_id, ok=True, payload=answer["result"], duration_ms=elapsed)
        self.errors += 1
        return InvokeResult(request_id, ok=False, error=answer["error"], duration_ms=elapsed)

    def worker_pids(self) -> list[int]:
        with self._lock:
            return [w.proc.pid for w in self._all]

    def close_all(self) -> list[_Worker]:
        """Close every worker's socket (a worker exits on EOF); returns them for `reap`."""
        self._closed = True
        with self._lock:
            workers, self._all = list(self._all), []
        for worker in workers:
            worker.conn.close()
        return workers

    @staticmethod
    def reap(workers: list[_Worker]) -> None:
        for worker in workers:
            try:
                worker.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                stop_process(worker.proc)

    def stop(self) -> None:
        self.reap(self.close_all())


class LambdaEngine:
    """Every function in the graph, looked up by name, ARN or invoke ARN."""

    name = "lambda"

    def __init__(self, sink: LogSink, *, max_workers: int = 4, fork_server: bool = True) -> None:
        self.sink = sink
        self.max_workers = max_workers
        self.use_fork_server = fork_server
        self.fork_server: ForkServer | None = None
        self.functions: dict[str, FunctionRuntime] = {}
        self.warnings: list[str] = []

    def start_fork_server(self) -> None:
        """Start the fork server (it imports the libraries in the background); deploy does it if not done."""
        if self.use_fork_server and self.fork_server is None:
            self.fork_server = ForkServer(self.sink)

    @staticmethod
    def specs(graph: Graph) -> list[FunctionSpec]:
        return [FunctionSpec.from_resource(r) for r in graph.of_type(FUNCTION)]

    @classmethod
    def check(cls, graph: Graph) -> list[str]:
        """Check every function's handler and environment against its code's contract (before anything starts)."""
        warnings: list[str] = []
        for spec in cls.specs(graph):
            warnings += check_environment(spec)
        return warnings

    def deploy(self, graph: Graph, *, aws_endpoint: str, translations: dict[str, str]) -> None:
        self.warnings = self.check(graph)
        specs = self.specs(graph)
        if specs:
            self.start_fork_server()
        for spec in specs:
            self.functions[spec.name] = FunctionRuntime(spec, self.sink, aws_endpoint=aws_endpoint,
                                                        region=graph.region, translations=translations,
                                                        max_workers=self.max_workers, fork_server=self.fork_server)
        errors: list[BaseException] = []

        def start(runtime: FunctionRuntime) -> None:
            try:
                runtime.start()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=start, args=(rt,)) for rt in self.functions.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]

    def find(self, ref: str) -> FunctionRuntime:
        """A function by name, ARN (qualified or not) or API Gateway invoke ARN."""
        for runtime in self.functions.values():
            spec = runtime.spec
            if ref in (spec.name, spec.arn, spec.invoke_arn, f"{spec.arn}:$LATEST"):
                return runtime
        raise DeployError(f"no function in the graph matches {ref!r}")

    def stop(self) -> None:
        closed = [w for runtime in self.functions.values() for w in runtime.close_all()]
        FunctionRuntime.reap(closed)  # all at once: each worker exits on EOF
        if self.fork_server is not None:
            self.fork_server.stop()
            self.fork_server = None

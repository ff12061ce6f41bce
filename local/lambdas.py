"""The Lambda engine: each `aws:lambda/function:Function` in the graph runs in its own worker processes.

A worker (`local.worker`) gets exactly the function's environment variables from the graph (translated: moto's
queue URLs, Envoy's ingress for the load balancer's hostname), plus what the Lambda service itself sets (region,
function name, memory size, handler) and, for the emulator, `AWS_ENDPOINT_URL` and dummy credentials; nothing
leaks in from the twin's own environment. Before any worker starts, each function's environment is checked
against its code's contract (`local.function_spec`).

Invocations run one at a time per worker, as in a Lambda execution environment. Concurrency as Lambda scales: a
call finds a warm idle worker or starts one (a cold start) while calls overlap, up to the function's limit, its
reserved concurrency (`reservedConcurrentExecutions`) or else the account's unreserved pool (1000); a call beyond
the limit is throttled (`TooManyRequestsException`, nothing runs). The machine caps the workers per function
(`--max-workers`): a call above that cap but within the limit waits for a worker, as the cloud would have scaled
(slower here, never a throttle the cloud would not give). A run past the function's timeout kills its worker, is
answered as a timeout (`Task timed out after N seconds`, like Lambda) and a fresh worker takes its place.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from infra.config import PROJECT_DIR
from local.aws import DUMMY_CREDENTIALS
from local.engine import Engine, EngineSettings
from local.errors import DeployError
from local.facts import AwsFacts, Facts, LambdaFacts, TracingFacts, exporter_env
from local.function_spec import FUNCTION, FunctionSpec, InvokeResult, check_functions, function_specs
from local.processes import LogSink, kill_process, pump, start_process, stop_process
from sim.capture import Graph

# Set by Lambda in every execution environment, the same for every function (the fork server's too).
LAMBDA_CONSTANT_ENV = {"AWS_EXECUTION_ENV": "AWS_Lambda_python3.12", "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand"}
TYPES = (FUNCTION,)
INIT_TIMEOUT_SECONDS = 60.0  # Lambda allows 10 s; a loaded 2-core machine needs more
#: A Region's default concurrency quota per account: the limit of a function without reserved concurrency.
ACCOUNT_CONCURRENCY = 1000


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
                 translations: dict[str, str], max_workers: int = 4, fork_server: ForkServer | None = None,
                 telemetry_env: Mapping[str, str] | None = None) -> None:
        self.spec = spec
        self.fork_server = fork_server
        self.sink = sink
        self.region = region
        self.max_workers = max_workers
        self.env = {**self._environment(aws_endpoint, translations), **(telemetry_env or {})}
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        self._in_flight = 0
        self._spawning = 0
        self.limit = ACCOUNT_CONCURRENCY if spec.reserved_concurrency is None else spec.reserved_concurrency
        """Concurrent executions Lambda allows before it throttles (reserved concurrency or the account's)."""
        self.invocations = 0
        self.errors = 0
        self.timeouts = 0
        self.throttles = 0
        self.peak_concurrency = 0

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
        if self.limit > 0:  # reserved concurrency 0: nothing ever runs, no environment is made
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
            grow = len(self._all) + self._spawning < min(self.max_workers, self.limit)
            if grow:
                self._spawning += 1
        if grow:
            try:
                return self._spawn()  # a cold start, as Lambda scales out
            finally:
                with self._lock:
                    self._spawning -= 1
        return self._idle.get()

    def _admit(self) -> bool:
        """Count a call in, or refuse it (False) when the function already runs `limit` calls, as Lambda does."""
        with self._lock:
            if self._in_flight >= self.limit:
                self.throttles += 1
                return False
            self._in_flight += 1
            self.peak_concurrency = max(self.peak_concurrency, self._in_flight)
            return True

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _throttled(self, request_id: str) -> InvokeResult:
        reason = ("ReservedFunctionConcurrentInvocationLimitExceeded" if self.spec.reserved_concurrency is not None
                  else "ConcurrentInvocationLimitExceeded")
        self.sink.write(self.component, f"{request_id} throttled: {self.limit} concurrent executions ({reason})")
        return InvokeResult(request_id, ok=False, throttled=True, error={
            "errorType": "TooManyRequestsException", "errorMessage": "Rate Exceeded.", "Reason": reason})

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
        if not self._admit():
            return self._throttled(request_id)
        try:
            return self._run(event, limit, request_id)
        finally:
            self._leave()

    def _run(self, event: Any, limit: float, request_id: str) -> InvokeResult:
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

    def concurrency(self) -> dict[str, Any]:
        """Workers now (warm and busy), the calls running, the limit and the machine's cap, for `status`."""
        with self._lock:
            return {"workers": len(self._all), "busy": self._in_flight, "limit": self.limit,
                    "reservedConcurrency": self.spec.reserved_concurrency,
                    "machineCap": min(self.max_workers, self.limit), "peakConcurrency": self.peak_concurrency,
                    "throttles": self.throttles}

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


class LambdaEngine(Engine):
    """Every function in the graph, looked up by name, ARN or invoke ARN (the `Functions` it hands on)."""

    name = "lambda"
    types = TYPES
    provides = LambdaFacts
    reads = (TracingFacts, AwsFacts)

    def __init__(self, sink: LogSink, *, max_workers: int = 4, fork_server: bool = True) -> None:
        self.sink = sink
        self.max_workers = max_workers
        self.use_fork_server = fork_server
        self.fork_server: ForkServer | None = None
        self.functions: dict[str, FunctionRuntime] = {}
        self.warnings: list[str] = []

    @classmethod
    def build(cls, settings: EngineSettings, sink: LogSink) -> LambdaEngine:
        return cls(sink, max_workers=settings.max_workers, fork_server=settings.fork_server)

    def prepare(self) -> None:
        """Start the fork server (it imports the libraries in the background); deploy does it if not done."""
        if self.use_fork_server and self.fork_server is None:
            self.fork_server = ForkServer(self.sink)

    def deploy(self, graph: Graph, facts: Facts) -> LambdaFacts:
        aws = facts.require(AwsFacts)
        self.warnings = check_functions(graph)
        specs = function_specs(graph)
        if specs:
            self.prepare()
        translations = facts.translations
        for spec in specs:
            self.functions[spec.name] = FunctionRuntime(spec, self.sink, aws_endpoint=aws.endpoint_url,
                                                        region=graph.region, translations=translations,
                                                        max_workers=self.max_workers, fork_server=self.fork_server,
                                                        telemetry_env=exporter_env(facts))
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
        return LambdaFacts(functions=self)

    def find(self, ref: str) -> FunctionRuntime:
        """A function by name, ARN (qualified or not) or API Gateway invoke ARN."""
        for runtime in self.functions.values():
            spec = runtime.spec
            if ref in (spec.name, spec.arn, spec.invoke_arn, f"{spec.arn}:$LATEST"):
                return runtime
        raise DeployError(f"no function in the graph matches {ref!r}")

    def endpoints(self) -> dict[str, str]:
        return {}

    def status(self) -> dict[str, Any]:
        return {name: {"handler": rt.spec.handler, "memoryMb": rt.spec.memory_mb,
                       "timeoutSeconds": rt.spec.timeout_seconds, "pids": rt.worker_pids(),
                       "invocations": rt.invocations, "errors": rt.errors, "timeouts": rt.timeouts,
                       **rt.concurrency()}
                for name, rt in self.functions.items()}

    def stop(self) -> None:
        closed = [w for runtime in self.functions.values() for w in runtime.close_all()]
        FunctionRuntime.reap(closed)  # all at once: each worker exits on EOF
        if self.fork_server is not None:
            self.fork_server.stop()
            self.fork_server = None

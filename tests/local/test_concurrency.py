"""Lambda concurrency and stage throttling, in-process: workers added while calls overlap and reused when warm, a
call beyond the reserved concurrency throttled (and how the gateway and the S3 events answer that), the stage's
token bucket with a fake clock."""

from __future__ import annotations

import io
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest

from local.function_spec import FunctionSpec, InvokeResult
from local.gateway.handler import Gateway
from local.gateway.spec import RestApi
from local.gateway.throttle import StageThrottle, TokenBucket
from local.lambdas import ForkServer, FunctionRuntime
from local.processes import LogSink
from local.s3events import AsyncConfig, S3EventsEngine, Target
from tests.local.test_gateway_rules import ARN, Clock, Functions, RecordingFunction, _body, _request

NAP = "tests.local.testfns.handlers.nap"


def _spec(reserved: int | None) -> FunctionSpec:
    return FunctionSpec(resource_name="nap-function", name="nap", arn="arn:aws:lambda:eu-west-1:1:function:nap",
                        invoke_arn="inv", handler=NAP, environment={"GREETING": "hi"}, memory_mb=128,
                        timeout_seconds=10, reserved_concurrency=reserved)


@pytest.fixture(scope="module")
def fork_server() -> Any:
    server = ForkServer(LogSink(io.StringIO()))
    yield server
    server.stop()


def _runtime(fork_server: ForkServer, reserved: int | None, max_workers: int = 4) -> FunctionRuntime:
    return FunctionRuntime(_spec(reserved), LogSink(io.StringIO()), aws_endpoint="http://127.0.0.1:1",
                           region="eu-west-1", translations={}, max_workers=max_workers, fork_server=fork_server)


def _overlapping(runtime: FunctionRuntime, calls: int, seconds: float) -> list[InvokeResult]:
    barrier = threading.Barrier(calls)

    def call(_: int) -> InvokeResult:
        barrier.wait()
        return runtime.invoke({"seconds": seconds})

    with ThreadPoolExecutor(calls) as pool:
        return list(pool.map(call, range(calls)))


def test_calls_beyond_reserved_concurrency_are_throttled_and_warm_workers_are_reused(fork_server: ForkServer) -> None:
    runtime = _runtime(fork_server, reserved=2)
    try:
        runtime.start()
        results = _overlapping(runtime, 5, 1.5)
        ok = [r for r in results if r.ok]
        throttled = [r for r in results if r.throttled]
        assert len(ok) == 2 and len(throttled) == 3
        assert {json.loads(r.payload["body"])["pid"] for r in ok} == set(runtime.worker_pids())
        assert throttled[0].error == {"errorType": "TooManyRequestsException", "errorMessage": "Rate Exceeded.",
                                      "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"}
        assert throttled[0].function_error is None  # Lambda refused it; no function ran
        warm = set(runtime.worker_pids())
        again = [runtime.invoke({"seconds": 0}) for _ in range(3)]
        assert all(r.ok for r in again) and set(runtime.worker_pids()) == warm  # no cold start when warm
        status = runtime.concurrency()
        assert status["workers"] == 2 and status["limit"] == 2 and status["throttles"] == 3
        assert status["peakConcurrency"] == 2 and status["busy"] == 0
    finally:
        runtime.stop()


def test_the_machine_cap_queues_calls_instead_of_throttling(fork_server: ForkServer) -> None:
    runtime = _runtime(fork_server, reserved=None, max_workers=1)
    try:
        runtime.start()
        results = _overlapping(runtime, 3, 0.3)
        assert all(r.ok for r in results)
        assert len(runtime.worker_pids()) == 1 and runtime.concurrency()["limit"] == 1000
    finally:
        runtime.stop()


def test_reserved_concurrency_zero_runs_nothing(fork_server: ForkServer) -> None:
    runtime = _runtime(fork_server, reserved=0)
    runtime.start()
    result = runtime.invoke({"seconds": 0})
    assert result.throttled and runtime.worker_pids() == []


@dataclass
class ThrottledFunction(RecordingFunction):
    """Throttled for the first `throttles` calls, then answers."""

    throttles: int = 0
    calls: list[int] = field(default_factory=list)

    def invoke(self, event: Any, *, timeout: float | None = None) -> InvokeResult:
        self.calls.append(1)
        if len(self.calls) <= self.throttles:
            return InvokeResult("t", ok=False, throttled=True, error={"errorType": "TooManyRequestsException"})
        return super().invoke(event, timeout=timeout)


def test_the_gateway_answers_a_lambda_throttle_as_an_internal_server_error() -> None:
    create = ThrottledFunction({"statusCode": 201, "body": "{}"}, throttles=1)
    api = RestApi.from_body(_body(), api_id="abc", stage="api", region="eu-west-1")
    gateway = Gateway(api, Functions({ARN.format("todos-create"): create}), LogSink(io.StringIO()))  # type: ignore[arg-type]
    response = gateway.handle(_request("POST", "/todos", body=b'{"title": "x"}'))
    assert response.status == 500
    assert json.loads(response.body) == {"error": {"code": "INTERNAL", "message": "Internal server error"}}
    assert gateway.handle(_request("POST", "/todos", body=b'{"title": "x"}')).status == 201


def test_token_bucket_allows_the_burst_then_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.5  # one token back at 2 per second
    assert [bucket.take() for _ in range(2)] == [True, False]
    clock.now += 10  # never more than the burst
    assert sum(bucket.take() for _ in range(5)) == 3


def test_the_stage_answers_429_beyond_its_burst_before_the_function_runs() -> None:
    clock = Clock()
    create = RecordingFunction({"statusCode": 201, "body": "{}"})
    api = RestApi.from_body(_body(), api_id="abc", stage="api", region="eu-west-1")
    throttle = StageThrottle({"*/*": (1.0, 2)}, clock=clock)
    gateway = Gateway(api, Functions({ARN.format("todos-create"): create}), LogSink(io.StringIO()),  # type: ignore[arg-type]
                      clock=clock, throttle=throttle)
    statuses = [gateway.handle(_request("POST", "/todos", body=b'{"title": "x"}')) for _ in range(3)]
    assert [r.status for r in statuses] == [201, 201, 429]
    assert json.loads(statuses[2].body) == {"error": {"code": "THROTTLED", "message": "Too Many Requests"}}
    assert len(create.events) == 2 and throttle.throttled == 1
    clock.now += 1.0
    assert gateway.handle(_request("POST", "/todos", body=b'{"title": "x"}')).status == 201


def test_an_s3_event_waits_out_throttles_without_spending_its_retries() -> None:
    function = ThrottledFunction({"ok": True}, throttles=3)
    function.spec = _spec(1)  # type: ignore[attr-defined]
    engine = S3EventsEngine(LogSink(io.StringIO()), retry_delays=(0.0,))
    engine.lambdas = Functions({function.spec.arn: function})  # type: ignore[assignment,attr-defined]
    engine.configs[function.spec.arn] = AsyncConfig(max_retries=0)  # type: ignore[attr-defined]
    target = Target(bucket="b", function_arn=function.spec.arn, events=("s3:ObjectCreated:*",),  # type: ignore[attr-defined]
                    prefix="", suffix="", configuration_id="c")
    engine._deliver(target, {"Records": [{"s3": {"object": {"key": "k"}}}]})
    assert len(function.calls) == 4 and engine.delivered == 1 and engine.failed == 0

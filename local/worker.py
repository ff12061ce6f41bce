"""One Lambda execution environment: `python -m local.worker <fd>`, or a fork server of them (`--zygote <fd>`).

Started by `local.lambdas.FunctionRuntime` with exactly the function's environment. It imports the handler named
by `_HANDLER` once (the init phase), then serves invocations one at a time over the socket `fd`: a JSON request
in, a JSON result or Lambda-shaped error out. Its own stdout/stderr are the function's logs (the twin prefixes
them with the function name), with Lambda's START/END/REPORT lines around each run.

The fork server (`--zygote`) imports the heavy third-party libraries once (boto3, botocore, pydantic, Powertools;
never project code) and forks one child per worker on request: the child starts a new session, takes its
socket and log pipe, *replaces* its environment with exactly the function's, then imports the handler, as a
fresh worker would. That makes a worker ~10x cheaper to start. The libraries read no environment at import time
except `AWS_EXECUTION_ENV` and `AWS_LAMBDA_INITIALIZATION_TYPE`, which are the same for every function.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import resource
import signal
import socket
import sys
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any


class LambdaContext:
    """The attributes of the Python runtime's context object."""

    def __init__(self, request_id: str, deadline_ms: int) -> None:
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = os.environ["LOCAL_LAMBDA_FUNCTION_ARN"]
        self.memory_limit_in_mb = int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _error(exc: BaseException) -> dict[str, Any]:
    return {"errorMessage": str(exc), "errorType": type(exc).__name__,
            "stackTrace": traceback.format_tb(exc.__traceback__)}


PRELOAD = ("boto3", "botocore.client", "botocore.session", "pydantic", "aws_lambda_powertools.logging",
           "aws_lambda_powertools.event_handler", "aws_lambda_powertools.utilities.typing",
           "aws_lambda_powertools.utilities.data_classes")


def zygote(control_fd: int) -> int:
    """Serve spawn requests on a SOCK_SEQPACKET socket: {"env", "cwd"} + [invoke fd, log fd] -> {"pid"}."""
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    control = socket.socket(fileno=control_fd)
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 1 << 20, 2)
        except OSError:
            return 0
        if not message:
            return 0
        request = json.loads(message)
        pid = os.fork()
        if pid == 0:
            control.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.setsid()
            invoke_fd, log_fd = fds
            os.dup2(log_fd, 1)
            os.dup2(log_fd, 2)
            os.close(log_fd)
            os.environ.clear()
            os.environ.update(request["env"])
            os.chdir(request["cwd"])
            try:
                code = serve(invoke_fd)
            finally:
                sys.stdout.flush()
            os._exit(code)
        for fd in fds:
            os.close(fd)
        control.send(json.dumps({"pid": pid}).encode())


def main() -> int:
    if sys.argv[1] == "--zygote":
        return zygote(int(sys.argv[2]))
    return serve(int(sys.argv[1]))


def serve(fd: int) -> int:
    conn = Connection(fd)
    handler_path = os.environ["_HANDLER"]
    module_name, _, func_name = handler_path.rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), func_name)
    except Exception as exc:  # the init phase failed: Lambda reports Runtime.ImportModuleError
        conn.send_bytes(json.dumps({"init_error": {**_error(exc), "errorType": "Runtime.ImportModuleError"}})
                        .encode())
        return 1
    conn.send_bytes(json.dumps({"ready": True}).encode())
    memory = int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
    while True:
        try:
            request = json.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return 0
        request_id = request["requestId"]
        print(f"START RequestId: {request_id} Version: $LATEST", flush=True)
        started = time.perf_counter()
        try:
            result = handler(request["event"], LambdaContext(request_id, request["deadlineMs"]))
            try:
                answer: dict[str, Any] = {"ok": True, "result": json.loads(json.dumps(result))}
            except (TypeError, ValueError) as exc:
                answer = {"ok": False, "error": {**_error(exc), "errorType": "Runtime.MarshalError"}}
        except Exception as exc:
            answer = {"ok": False, "error": _error(exc)}
            print(json.dumps({"level": "ERROR", "requestId": request_id, **answer["error"]}), file=sys.stderr,
                  flush=True)
        elapsed = (time.perf_counter() - started) * 1000
        used = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        answer["maxMemoryUsedMb"] = used
        print(f"END RequestId: {request_id}", flush=True)
        print(f"REPORT RequestId: {request_id}\tDuration: {elapsed:.2f} ms\tMemory Size: {memory} MB\t"
              f"Max Memory Used: {used} MB", flush=True)
        conn.send_bytes(json.dumps(answer).encode())


if __name__ == "__main__":
    sys.exit(main())

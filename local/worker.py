"""One Lambda execution environment: `python -m local.worker <fd>`.

Started by `local.lambdas.FunctionRuntime` with exactly the function's environment. It imports the handler named
by `_HANDLER` once (the init phase), then serves invocations one at a time over the socket `fd`: a JSON request
in, a JSON result or Lambda-shaped error out. Its own stdout/stderr are the function's logs (the twin prefixes
them with the function name), with Lambda's START/END/REPORT lines around each run.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
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


def main() -> int:
    conn = Connection(int(sys.argv[1]))
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

"""The threading HTTP server every loopback endpoint of the twin builds on (the gateway, the trace collector, the
tests' stand-ins).

Two defaults of `http.server` do not suit a server that many local clients hit at once: a listen backlog of 5 (the
kernel resets connections in a burst of 60 clients), and a traceback on stderr whenever a client hangs up mid-request
(a keep-alive connection a client closes, a test that abandons a slow request): that is the client's business, not
a server error, and the noise hides the tracebacks that are.
"""

from __future__ import annotations

import sys
from http.server import ThreadingHTTPServer
from typing import Any


class LoopbackHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):  # reset, broken pipe, aborted: the client left
            return
        super().handle_error(request, client_address)

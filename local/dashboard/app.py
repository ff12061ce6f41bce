"""The page's ASGI app (Starlette): the page, its static files, the last snapshot as JSON, and a stream of them.

`/events` is server-sent events (sse-starlette): each new snapshot once, as it is sampled; a browser's
`EventSource` reconnects by itself after the twin restarted the page. A client that stops reading is dropped
after `SEND_TIMEOUT` seconds instead of holding a send open; the sampler never waits on any client.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"
POLL_SECONDS = 0.2
"""How often a stream looks for a new snapshot (the sampler makes one a second)."""
SEND_TIMEOUT = 5.0
PING_SECONDS = 15


def create_app(latest: Callable[[], tuple[int, str]], stopping: threading.Event) -> Starlette:
    """`latest()` gives the last snapshot's number and JSON; `stopping` ends every open stream."""

    async def page(_: Request) -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def snapshot(_: Request) -> Response:
        return Response(latest()[1], media_type="application/json", headers={"Cache-Control": "no-store"})

    async def stream() -> AsyncIterator[ServerSentEvent]:
        sent = 0  # snapshot 0 is the empty one before the first sample
        while not stopping.is_set():
            seq, body = latest()
            if seq != sent:
                sent = seq
                yield ServerSentEvent(data=body, id=str(seq), event="snapshot")
            await asyncio.sleep(POLL_SECONDS)

    async def events(_: Request) -> EventSourceResponse:
        return EventSourceResponse(stream(), ping=PING_SECONDS, send_timeout=SEND_TIMEOUT,
                                   headers={"Cache-Control": "no-store"})

    return Starlette(routes=[
        Route("/", page),
        Route("/api/snapshot", snapshot),
        Route("/events", events),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ])

"""`build_app`: the parts every service's `create_app()` shares (lifespan, probes, errors, logging)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from psycopg import AsyncConnection

from services.common.db import Database
from services.common.errors import error_body, error_responses, install_error_handlers
from services.common.logging import RequestIdMiddleware, configure_logging
from services.common.settings import ServiceSettings
from services.common.tracing import setup_tracing, untraced


def get_database(request: Request) -> Database:
    return request.app.state.database  # type: ignore[no-any-return]


async def get_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """FastAPI dependency: the connection goes back to the pool when the request ends, error or not."""
    async with get_database(request).connection() as conn:
        yield conn


Connection = Annotated[AsyncConnection, Depends(get_connection)]


def build_app(
    *,
    service: str,
    title: str,
    settings: ServiceSettings,
    router: APIRouter,
    configure_state: Callable[[FastAPI], None] | None = None,
) -> FastAPI:
    configure_logging(service, settings.LOG_LEVEL)
    setup_tracing(service)  # before the pool's first connection: psycopg's connect is instrumented
    database = Database(settings, service=service)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await database.start()
        try:
            yield
        finally:
            # uvicorn runs this on SIGTERM after in-flight requests finish: close the pool cleanly.
            await database.close()

    # FastAPI's native telemetry: a server span per request, continuing the caller's traceparent, once a tracer
    # provider is installed (no-op otherwise). Operation spans off: the waterfall shows hops, not dependencies.
    app = FastAPI(title=title, version="1.0.0", lifespan=lifespan,
                  telemetry={"exclude": untraced, "operation_spans": False})
    app.state.database = database
    app.state.settings = settings
    if configure_state is not None:
        configure_state(app)
    install_error_handlers(app)
    app.add_middleware(RequestIdMiddleware)

    @app.get("/health", tags=["probes"])
    async def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready", tags=["probes"], responses=error_responses(503))
    async def ready(request: Request) -> Any:
        """Readiness: the role's grants are in place and the database answers."""
        if await get_database(request).ready():
            return {"status": "ready"}
        return JSONResponse(
            error_body("NOT_READY", "the database is not reachable"),
            status_code=503,
            headers={"Retry-After": "1"},
        )

    app.include_router(router)
    return app


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """What `python -m services.<name>` runs."""
    import uvicorn

    uvicorn.run(
        app,
        host=settings.HOST,
        port=settings.PORT,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=20,
        proxy_headers=False,
    )

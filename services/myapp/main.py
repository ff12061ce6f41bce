"""The ASGI app: ``/version`` for the canary split, ``/health`` and ``/ready`` for the probes."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.myapp.fault import FaultSchedule
from services.myapp.settings import Settings, get_settings

logger = logging.getLogger("myapp")

PROBE_PATHS = frozenset({"/health", "/ready"})


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(title="myapp", version=settings.VERSION)

    if settings.FAULT_PERCENT > 0:  # installed only when asked for: the default hot path has no middleware
        schedule = FaultSchedule(settings.FAULT_PERCENT)

        @app.middleware("http")
        async def inject_failures(request: Request, call_next):  # type: ignore[no-untyped-def]
            # Probes never fail and are not counted: a bad release's pod is alive and ready, only its requests
            # error, which is what the canary analysis (not the kubelet) has to catch.
            if request.url.path not in PROBE_PATHS and schedule.next_fails():
                logger.warning("injected failure", extra={"path": request.url.path, "version": settings.VERSION})
                return JSONResponse(
                    status_code=500,
                    content={"error": {"code": "INJECTED_FAILURE", "message": "failure injected by FAULT_PERCENT"}},
                )
            return await call_next(request)

    @app.get("/version")
    async def version() -> dict[str, str]:
        """Which version of the app answered."""
        return {"version": settings.VERSION}

    @app.get("/health")
    async def health() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> dict[str, str]:
        """Ready to serve (the app has no dependencies to wait for)."""
        return {"status": "ready", "version": settings.VERSION}

    return app

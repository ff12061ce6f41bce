"""The notification ASGI app."""

from __future__ import annotations

from fastapi import FastAPI

from services.common.app import build_app
from services.notification.routes import router
from services.notification.settings import Settings, get_settings

SERVICE = "notification"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    return build_app(
        service=SERVICE, title="Notification service", settings=settings, router=router
    )

"""The inventory ASGI app."""

from __future__ import annotations

from fastapi import FastAPI

from services.common.app import build_app
from services.inventory.routes import router
from services.inventory.settings import Settings, get_settings

SERVICE = "inventory"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    return build_app(
        service=SERVICE,
        title="Inventory service",
        settings=settings,
        router=router,
    )

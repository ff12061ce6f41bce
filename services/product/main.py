"""The product ASGI app."""

from __future__ import annotations

from fastapi import FastAPI

from services.common.app import build_app
from services.product.routes import router
from services.product.settings import Settings, get_settings

SERVICE = "product"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    return build_app(
        service=SERVICE,
        title="Product service",
        settings=settings,
        router=router,
    )

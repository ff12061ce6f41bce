"""``python -m services.myapp``: serve the app with uvicorn on HOST:PORT."""

from __future__ import annotations

import uvicorn

from services.common.logging import configure_logging
from services.myapp.main import create_app
from services.myapp.settings import get_settings


def main() -> None:
    settings = get_settings()
    configure_logging("myapp", settings.LOG_LEVEL)
    uvicorn.run(
        create_app(settings),
        host=settings.HOST,
        port=settings.PORT,
        log_config=None,
        access_log=False,  # Envoy/the sidecar already logs every request; this keeps the app's hot path short
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()

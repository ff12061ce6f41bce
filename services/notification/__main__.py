"""`python -m services.notification`: uvicorn on HOST:PORT."""

from services.common.app import serve
from services.notification.main import create_app
from services.notification.settings import get_settings

if __name__ == "__main__":
    serve(create_app(), get_settings())

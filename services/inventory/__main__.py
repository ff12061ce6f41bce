"""`python -m services.inventory`: uvicorn on HOST:PORT."""

from services.common.app import serve
from services.inventory.main import create_app
from services.inventory.settings import get_settings

if __name__ == "__main__":
    serve(create_app(), get_settings())

"""`python -m services.product`: uvicorn on HOST:PORT."""

from services.common.app import serve
from services.product.main import create_app
from services.product.settings import get_settings

if __name__ == "__main__":
    serve(create_app(), get_settings())

"""ASGI entry point: ``uvicorn address_finder.main:app``."""

from address_finder.bootstrap import create_app

app = create_app()

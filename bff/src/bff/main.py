"""ASGI entry point: ``uvicorn bff.main:app``."""

from bff.bootstrap import create_app

app = create_app()

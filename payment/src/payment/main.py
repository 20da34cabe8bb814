"""ASGI entry point: ``uvicorn payment.main:app``."""

from payment.bootstrap import create_app

app = create_app()

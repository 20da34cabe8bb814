"""ASGI entry point: ``uvicorn car_dispatcher.main:app``."""

from car_dispatcher.bootstrap import create_app

app = create_app()

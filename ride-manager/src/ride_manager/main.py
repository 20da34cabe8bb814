"""ASGI entry point: ``uvicorn ride_manager.main:app``."""

from ride_manager.bootstrap import create_app

app = create_app()

"""ASGI entry point: ``uvicorn route_monitor.main:app``."""

from route_monitor.bootstrap import create_app

app = create_app()

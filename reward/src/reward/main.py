"""ASGI entry point: ``uvicorn reward.main:app``."""

from reward.bootstrap import create_app

app = create_app()

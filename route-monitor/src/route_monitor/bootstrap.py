"""The composition root of route-monitor."""

from __future__ import annotations

from fastapi import FastAPI

from acr import logs
from acr.settings import get_settings
from acr.web import install_error_handlers, install_ops_routes


def create_app() -> FastAPI:
    settings = get_settings()
    logs.configure("route-monitor", settings.log_level, settings.log_format)
    app = FastAPI(title="ACR route-monitor", version="0.1.0")
    install_error_handlers(app)
    install_ops_routes(app, "route-monitor")
    return app

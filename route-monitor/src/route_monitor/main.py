"""ASGI app factory: ``python -m acr.serve route-monitor`` (``uvicorn route_monitor.main:create_app
--factory``)."""

from fastapi import FastAPI

from route_monitor.bootstrap import SERVICE


def create_app() -> FastAPI:
    return SERVICE.app()

"""ASGI app factory: ``python -m acr.serve ride-manager``
(``uvicorn ride_manager.main:create_app --factory``)."""

from fastapi import FastAPI

from ride_manager.bootstrap import SERVICE


def create_app() -> FastAPI:
    return SERVICE.app()

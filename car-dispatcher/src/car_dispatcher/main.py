"""ASGI app factory: ``python -m acr.serve car-dispatcher``
(``uvicorn car_dispatcher.main:create_app --factory``)."""

from fastapi import FastAPI

from car_dispatcher.bootstrap import SERVICE


def create_app() -> FastAPI:
    return SERVICE.app()

"""ASGI app factory: ``python -m acr.serve car-simulator`` (``uvicorn car_simulator.main:create_app
--factory``)."""

from fastapi import FastAPI

from car_simulator.bootstrap import SERVICE


def create_app() -> FastAPI:
    return SERVICE.app()

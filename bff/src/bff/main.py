"""ASGI app factory: ``python -m acr.serve bff`` (``uvicorn bff.main:create_app --factory``)."""

from fastapi import FastAPI

from bff.bootstrap import SERVICE


def create_app() -> FastAPI:
    return SERVICE.app()

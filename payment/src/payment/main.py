"""ASGI app factory: ``python -m acr.serve payment`` (``uvicorn payment.main:create_app --factory``)."""

from fastapi import FastAPI

from payment.bootstrap import SERVICE


def create_app() -> FastAPI:
    return SERVICE.app()

"""ASGI app factory: ``python -m acr.serve reward`` (``uvicorn reward.main:create_app --factory``)."""

from fastapi import FastAPI

from reward.bootstrap import SERVICE


def create_app() -> FastAPI:
    return SERVICE.app()

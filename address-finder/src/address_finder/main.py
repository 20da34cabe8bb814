"""ASGI app factory: ``python -m acr.serve address-finder`` (``uvicorn address_finder.main:create_app
--factory``)."""

from fastapi import FastAPI

from address_finder.bootstrap import SERVICE


def create_app() -> FastAPI:
    return SERVICE.app()

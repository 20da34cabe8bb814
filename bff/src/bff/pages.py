"""The rider app (``/``), the ops dashboard (``/dashboard``) and their static files (``/static``)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def install_pages(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def rider_app() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/dashboard", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(STATIC / "dashboard.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

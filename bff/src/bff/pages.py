"""The rider app (``/``), the ops dashboard (``/dashboard``) and their static files (``/static``)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from bff.chaos import chaos_enabled

STATIC = Path(__file__).parent / "static"
CHAOS_OFF, CHAOS_ON = 'data-chaos="off"', 'data-chaos="on"'


def install_pages(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def rider_app() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    page = (STATIC / "dashboard.html").read_text()

    @app.get("/dashboard", include_in_schema=False)
    async def dashboard(request: Request) -> HTMLResponse:
        """The dashboard, marked ``data-chaos="on"`` when the chaos controls exist (so that it never asks
        for them otherwise)."""
        settings = getattr(request.app.state, "settings", None)
        chaos = settings is not None and chaos_enabled(settings)
        return HTMLResponse(page.replace(CHAOS_OFF, CHAOS_ON, 1) if chaos else page)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

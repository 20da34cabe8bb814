"""ASGI entry point: ``uvicorn car_simulator.main:app``."""

from car_simulator.bootstrap import create_app

app = create_app()

"""The composition root of payment: the one place that wires adapters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from acr import logs
from acr.runtime import Messaging
from acr.settings import get_settings
from acr.unit_of_work import Conflict
from acr.web import error_response, install_error_handlers, install_ops_routes
from payment.adapters.dynamo import DynamoLedger, DynamoPaymentUnitOfWork
from payment.adapters.gateway import SimulatedGateway
from payment.api import router
from payment.domain import PaymentError
from payment.handlers import PaymentService
from payment.topology import TOPOLOGY


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    messaging = Messaging(TOPOLOGY, settings)
    gateway = SimulatedGateway(DynamoLedger(messaging.dynamodb), faults=messaging.faults)
    service = PaymentService(uow=lambda: DynamoPaymentUnitOfWork(messaging.unit_of_work()), gateway=gateway)
    app.state.payments = service
    app.state.gateway = gateway
    app.state.messaging = messaging
    messaging.consume("events", service.consumer())
    messaging.start()
    yield
    messaging.stop()


def install_payment_errors(app: FastAPI) -> None:
    @app.exception_handler(PaymentError)
    async def _payment(_: Request, exc: PaymentError) -> JSONResponse:
        return error_response(exc.status, exc.code, str(exc))

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, __: Conflict) -> JSONResponse:
        return error_response(409, "concurrent_update", "the payment changed meanwhile; try again")


def create_app(payments: PaymentService | None = None, gateway: SimulatedGateway | None = None) -> FastAPI:
    """The app; tests pass ``payments`` and ``gateway`` built from fakes and get no lifespan wiring."""
    settings = get_settings()
    logs.configure("payment", settings.log_level, settings.log_format)
    app = FastAPI(title="ACR payment", version="0.1.0", lifespan=None if payments else lifespan)
    if payments:
        app.state.payments = payments
        app.state.gateway = gateway
    install_error_handlers(app)
    install_payment_errors(app)
    install_ops_routes(app, "payment")
    app.include_router(router)
    return app

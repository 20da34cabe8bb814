"""HTTP routes of the payment service (operator and ops endpoints)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict

from payment.domain import Charge, GatewayMode, Payment
from payment.handlers import PaymentService
from payment.ports import GatewayOperations

router = APIRouter(prefix="/v1")


def _service(request: Request) -> PaymentService:
    return request.app.state.payments  # type: ignore[no-any-return]


def _gateway(request: Request) -> GatewayOperations:
    return request.app.state.gateway  # type: ignore[no-any-return]


Service = Annotated[PaymentService, Depends(_service)]
GatewayOps = Annotated[GatewayOperations, Depends(_gateway)]


class ModeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: GatewayMode


def payment_out(payment: Payment) -> dict[str, Any]:
    return {
        "rideId": payment.ride_id,
        "riderId": payment.rider_id,
        "status": payment.status.value,
        "purpose": payment.purpose.value,
        "amount": payment.amount.model_dump(),
        "attempts": payment.attempts,
        "paymentId": payment.payment_id,
        "reason": payment.reason,
        "updatedAt": payment.updated_at,
    }


def charge_out(charge: Charge) -> dict[str, Any]:
    return {
        "chargeId": charge.charge_id,
        "rideId": charge.ride_id,
        "type": charge.type,
        "amount": charge.amount.model_dump(),
        "at": charge.at,
    }


@router.get("/payments/{ride_id}")
def get_payment(ride_id: str, service: Service) -> dict[str, Any]:
    return payment_out(service.get(ride_id))


@router.post("/payments/{ride_id}/retry")
def retry_payment(ride_id: str, service: Service) -> dict[str, Any]:
    """Operator retry of a FAILED payment (same idempotency key: still at most one capture)."""
    return payment_out(service.retry(ride_id))


@router.get("/gateway/charges")
def charges(gateway: GatewayOps, rideId: str | None = None) -> dict[str, Any]:  # noqa: N803 - query name
    return {"charges": [charge_out(c) for c in gateway.charges(rideId, 500)]}


@router.get("/gateway")
def gateway_mode(gateway: GatewayOps) -> dict[str, str]:
    return {"mode": gateway.mode}


@router.put("/gateway")
def set_gateway_mode(body: ModeIn, gateway: GatewayOps) -> dict[str, str]:
    gateway.set_mode(body.mode)
    return {"mode": gateway.mode}

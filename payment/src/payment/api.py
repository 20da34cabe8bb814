"""HTTP routes of the payment service: operator endpoints only, behind the ops credential."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict

from acr import clock
from acr.contract import errors
from acr.guards import OPS
from acr.service import service_state
from payment import handlers
from payment.domain import Charge, GatewayMode, NotRetryable, Payment, PaymentNotFound
from payment.handlers import Charger
from payment.ports import GatewayOperations, UnitOfWork

router = APIRouter(prefix="/v1/ops", dependencies=[OPS], tags=["ops"])


@dataclass(frozen=True)
class PaymentState:
    """What the routes use."""

    unit_of_work: Callable[[], UnitOfWork]
    charger: Charger
    gateway: GatewayOperations


State = Annotated[PaymentState, Depends(service_state)]


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
        "sequence": payment.sequence,
        "updatedAt": clock.iso(payment.updated_at) if payment.updated_at else None,
    }


def charge_out(charge: Charge) -> dict[str, Any]:
    return {
        "chargeId": charge.charge_id,
        "rideId": charge.ride_id,
        "type": charge.type,
        "amount": charge.amount.model_dump(),
        "at": clock.iso(charge.at),
    }


@router.get("/payments/{ride_id}", responses=errors(PaymentNotFound))
def get_payment(ride_id: str, state: State) -> dict[str, Any]:
    return payment_out(handlers.get_payment(state.unit_of_work(), ride_id))


@router.post("/payments/{ride_id}/retry", responses=errors(PaymentNotFound, NotRetryable))
def retry_payment(ride_id: str, state: State) -> dict[str, Any]:
    """Operator retry of a FAILED payment (same idempotency key: still at most one capture); an UNKNOWN one is
    left to the reconciler (409)."""
    return payment_out(handlers.retry_payment(state.unit_of_work, ride_id, charger=state.charger))


@router.get("/gateway/charges")
def charges(
    state: State, ride_id: Annotated[str | None, Query(alias="rideId", min_length=1, max_length=128)] = None
) -> dict[str, Any]:
    return {"charges": [charge_out(c) for c in state.gateway.charges(ride_id, 500)]}


@router.get("/gateway")
def gateway_mode(state: State) -> dict[str, str]:
    return {"mode": state.gateway.mode}


@router.put("/gateway")
def set_gateway_mode(body: ModeIn, state: State) -> dict[str, str]:
    state.gateway.set_mode(body.mode)
    return {"mode": state.gateway.mode}

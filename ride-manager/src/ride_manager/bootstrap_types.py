"""What the routes get from the composition root."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from acr.settings import Settings
from ride_manager.ports import Dispatch, Geo, RideHistory, UnitOfWork


@dataclass(frozen=True)
class Services:
    settings: Settings
    uow: Callable[[], UnitOfWork]
    geo: Geo
    dispatch: Dispatch
    history: RideHistory

"""The composition root of the BFF: its adapters, and how they are put together (in tests, with fakes)."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from acr.runtime import Messaging
from acr.secrets import secret_values
from acr.service import Runtime, Service
from acr.settings import SERVICE_PORTS, Settings
from acr.unit_of_work import EffectsOnly
from bff import api, chaos, ops, ws
from bff.adapters.dlq import ServiceDeadLetters
from bff.adapters.http import (
    EveryReplica,
    HttpAddressFinder,
    HttpChaos,
    HttpFleet,
    HttpLoyalty,
    HttpPayments,
    HttpRideManager,
    HttpServiceStats,
    ServiceHttp,
    make_client,
)
from bff.auth import OidcIssuer, TokenSigner
from bff.consistency import WriteLog
from bff.handlers import handlers
from bff.handoff import AppLoop
from bff.pages import install_pages
from bff.push import ConnectionCaps, PushHub
from bff.ratelimit import RateLimiter
from bff.redaction import redact_server_logs
from bff.security import install_guess_budget
from bff.state import BffState, Dependencies
from bff.topology import TOPOLOGY

OTHER_SERVICES = tuple(service for service in SERVICE_PORTS if service != "bff")


def rider_tokens(settings: Settings) -> TokenSigner:
    """The rider tokens' keys: the current secret, the previous ones, and an external OIDC issuer if set."""
    previous = secret_values("token_previous_secrets", settings.token_previous_secrets)
    oidc = (
        OidcIssuer(settings.oidc_issuer, settings.oidc_audience, settings.oidc_jwks_url)
        if settings.oidc_issuer
        else None
    )
    return TokenSigner(settings.token_secret, settings.token_ttl_s, previous=previous, oidc=oidc)


def assemble(runtime: Runtime, deps: Dependencies) -> BffState:
    """The BFF's state around its adapters, with the push consumer subscribed to every queue of its slice."""
    redact_server_logs()
    settings = runtime.settings
    state = BffState(
        settings=settings,
        deps=deps,
        signer=rider_tokens(settings),
        limiter=RateLimiter(rate=20.0, burst=40.0),
        # Sign-ups are anonymous, so a rider's own limit is no control: a few per minute per client address.
        signup_limiter=RateLimiter(rate=settings.signups_per_minute / 60, burst=settings.signup_burst),
        ops_guesses=RateLimiter(rate=1 / 60, burst=settings.ops_guesses),
        writes=WriteLog(),
        hub=PushHub(
            deps.ride_manager,
            eta_interval_s=settings.eta_push_s,
            active_rides=deps.ride_manager,
            caps=ConnectionCaps(per_rider=settings.ws_per_rider, per_address=settings.ws_per_address),
        ),
        app_loop=AppLoop(runtime.event_loop),
    )
    push = handlers(hub=state.hub, app_loop=state.app_loop)
    for subscription in TOPOLOGY.subscriptions:
        deps.consumers.consume(subscription.queue, push, EffectsOnly)
    for topic_subscription in TOPOLOGY.topic_subscriptions:
        deps.consumers.consume(topic_subscription.queue, push, EffectsOnly, fifo=True)
    return state


def aws_adapters(runtime: Runtime) -> Dependencies:
    """HTTP to every other service (one shared client, closed when the app stops), each service's own DLQ
    routes among them; for the chaos controls, HTTP to the fault proxy and to every service's fault windows,
    this one's too."""
    settings = runtime.settings
    messaging = Messaging(TOPOLOGY, settings, runtime.loops)  # opens this replica's own push queues
    runtime.messaging = messaging
    runtime.on_close(lambda: asyncio.to_thread(messaging.close))  # and removes them once the loops stopped
    client = make_client()
    runtime.on_close(client.aclose)
    signed = runtime.credentials
    https = {name: ServiceHttp(client, name, settings.service_url(name), signed) for name in SERVICE_PORTS}
    every = {
        name: EveryReplica(
            [ServiceHttp(client, name, url, signed) for url in settings.replica_urls.get(name, {}).values()]
            or [https[name]]
        )
        for name in SERVICE_PORTS
    }
    control = (
        ServiceHttp(client, "fault-proxy", settings.chaos_control_url) if settings.chaos_control_url else None
    )
    return Dependencies(
        ride_manager=HttpRideManager(https["ride-manager"]),
        addresses=HttpAddressFinder(https["address-finder"]),
        fleet=HttpFleet(https["car-dispatcher"], https["car-simulator"], every["car-dispatcher"]),
        loyalty=HttpLoyalty(https["reward"]),
        payments=HttpPayments(https["payment"], every["payment"]),
        services=HttpServiceStats({name: https[name] for name in OTHER_SERVICES}, client, signed),
        dead_letters=ServiceDeadLetters("bff", messaging, {name: https[name] for name in OTHER_SERVICES}),
        consumers=messaging,
        chaos=HttpChaos(control, https, every),
    )


def extend(app: FastAPI) -> None:
    """What only the BFF's app has: the rider app and dashboard pages, and the wrong-guess budget on the
    kernel's ops routes."""
    install_pages(app)
    install_guess_budget(app)


SERVICE = Service[BffState](
    "bff",
    lambda runtime: assemble(runtime, aws_adapters(runtime)),
    routers=[ops.health, api.router, chaos.router, ops.router, ws.router],
    extend=extend,
)

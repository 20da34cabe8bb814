"""The composition root of address-finder: its state is the city, loaded once and served from memory."""

from __future__ import annotations

import logging

from acr.service import Runtime, Service
from acr_city import City, load_city
from address_finder.api import router

log = logging.getLogger(__name__)


def wire(runtime: Runtime) -> City:
    """The city the settings name (``ACR_CITY``, ``ACR_SEED``, ``ACR_CITY_CACHE_DIR``)."""
    settings = runtime.settings
    city = load_city(settings.city, settings.seed, settings.city_cache_dir, progress=log.info)
    log.info("city %s: %d addresses, %d street nodes", city.name, city.address_count, city.node_count)
    return city


SERVICE = Service("address-finder", wire, routers=[router])

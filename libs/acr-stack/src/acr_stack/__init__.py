"""The embedded stack: a moto server process, the topology, and every service as a local uvicorn process."""

from acr_stack.runner import Stack, StackConfig

__all__ = ["Stack", "StackConfig"]

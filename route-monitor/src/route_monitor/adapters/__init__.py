"""Adapters of the monitoring context."""

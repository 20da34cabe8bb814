"""Reward context: rider loyalty."""

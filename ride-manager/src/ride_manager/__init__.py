"""ACR ride-manager."""

"""ACR car-dispatcher."""

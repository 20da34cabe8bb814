"""ACR car-simulator."""

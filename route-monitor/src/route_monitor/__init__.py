"""ACR route-monitor."""

"""ACR payment."""

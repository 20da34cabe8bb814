"""ACR bff."""

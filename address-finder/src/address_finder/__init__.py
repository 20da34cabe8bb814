"""ACR address-finder."""

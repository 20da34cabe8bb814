"""Adapters of the BFF's ports: HTTP clients of the other services and the SQS dead-letter queues."""

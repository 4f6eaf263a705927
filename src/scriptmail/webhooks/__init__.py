"""Webhooks: events written with their cause (the outbox), signed as Standard Webhooks says, and
sent from the store at least once, never to the platform's own network unless the operator allows."""

"""Delivery: routing (static routes, relay host, MX), the SMTP client, the retry schedule."""

"""Sending domains: their names, DKIM keys, the records to publish, what DNS answers mean, signing.

The modules here are pure (no network, no store); the store, the DNS check and intake call them.
"""

"""Sending domains: what each customer must publish in DNS (DKIM, SPF, DMARC), and what it says;
their names, DKIM keys and signing.

The modules here are pure where they can be; the store, the DNS checks and intake call them.
"""

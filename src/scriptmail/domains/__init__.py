"""Sending domains: what each customer must publish in DNS (DKIM, SPF, DMARC), and what it says."""

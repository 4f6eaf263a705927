"""The certificates MTA-STS trusts: the system's authorities, plus one extra CA file if configured
(a private CA of the platform, or a test's)."""

from __future__ import annotations

import ssl
from pathlib import Path


def verifying_context(ca_file: Path | None) -> ssl.SSLContext:
    """A client context that checks the chain and the host name, TLS 1.2 or newer (§4.2)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context

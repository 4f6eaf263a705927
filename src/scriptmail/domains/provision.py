"""Making the keys of a new domain or of a rotation: generated, encrypted under the master key."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from scriptmail.config import DomainsSettings
from scriptmail.domains.keys import Algorithm, generate, selector
from scriptmail.domains.vault import open_vault
from scriptmail.store.domains import NewKey


def algorithms(settings: DomainsSettings) -> list[Algorithm]:
    return [Algorithm.RSA, Algorithm.ED25519] if settings.ed25519 else [Algorithm.RSA]


def new_keys(
    settings: DomainsSettings, now: float, taken: Iterable[str] = (), only: Iterable[Algorithm] | None = None, create: bool = True
) -> list[NewKey]:
    """One fresh key per algorithm, each under a dated selector not in `taken`.

    The master key file is created here if it does not exist yet and `create` (the only place that
    may): callers pass False once the store holds keys, which a new master key could not open.
    """
    vault = open_vault(settings.key_file, create=create)
    day = dt.datetime.fromtimestamp(now, dt.UTC).date()
    used = set(taken)
    keys = []
    for algorithm in list(only) if only is not None else algorithms(settings):
        pair = generate(algorithm, settings.rsa_bits)
        name = selector(day, algorithm, used)
        used.add(name)
        keys.append(NewKey(name, algorithm, pair.public, vault.encrypt(pair.private_pem)))
    return keys

"""The master key that encrypts DKIM private keys in the store (Fernet: AES-128-CBC + HMAC-SHA256).

The store is what nodes share and what gets backed up; the master key is a file on each node,
outside the database, so a backup or a leaked dump holds only ciphertext. Copy the file to every
node that signs (it is created 0600 the first time a key is generated, never on reading).
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


class VaultError(Exception):
    """The master key file is missing, unreadable or corrupt, or does not open a stored key."""


class Vault:
    def __init__(self, key: bytes, path: Path) -> None:
        self.path = path
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError):
            raise VaultError(f"{path} is not a master key file (corrupt?): it must hold one Fernet key") from None

    def encrypt(self, secret: bytes) -> bytes:
        return self._fernet.encrypt(secret)

    def decrypt(self, token: bytes) -> bytes:
        try:
            return self._fernet.decrypt(bytes(token))
        except InvalidToken:
            raise VaultError(f"the master key in {self.path} does not open this private key (another node's file?)") from None


def open_vault(path: Path, create: bool = False) -> Vault:
    """The vault of `path`; with `create`, a missing file is made (mode 0600, written atomically)."""
    try:
        key = path.read_bytes().strip()
    except FileNotFoundError:
        if not create:
            raise VaultError(f"the master key file {path} does not exist (copy it from the node that made the keys)") from None
        return _create(path)
    except OSError as error:
        raise VaultError(f"cannot read the master key file {path}: {error.strerror}") from None
    return Vault(key, path)


def _create(path: Path) -> Vault:
    key = Fernet.generate_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return open_vault(path)  # another process made it meanwhile: use theirs
    except OSError as error:
        raise VaultError(f"cannot create the master key file {path}: {error.strerror}") from None
    with os.fdopen(descriptor, "wb") as file:
        file.write(key + b"\n")
        file.flush()
        os.fsync(file.fileno())
    return Vault(key, path)

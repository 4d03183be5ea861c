"""The encryption key of stored credentials and the AES-256-GCM envelope around each secret.

The key is 32 random bytes, written base64url (``flowlite credentials generate-key`` prints one).
It comes from the ``encryption_key`` setting (``FLOWLITE_ENCRYPTION_KEY``) or, when that is empty,
from ``DATA_DIR/encryption.key``, created with mode 0600 on the first start. Passphrases are
refused on purpose: a key is only as strong as its randomness.

The database keeps the key's *fingerprint* (an HMAC of a fixed label under the key, 16 hex digits:
it identifies the key without revealing it). Starting with another key than the one the
credentials were encrypted with is refused at once with both fingerprints, instead of failing at
the first decryption.

An envelope is ``0x01 | fingerprint (8 bytes) | nonce (12 random bytes) | ciphertext+tag``, with
the credential's id as associated data, so a ciphertext copied onto another credential does not
decrypt. The fingerprint in the envelope tells a stale key (rotated by another process) apart from
tampered data.

Errors::

    UserError
    └── EncryptionKeyError    the key is malformed, missing, or not the database's key
    InternalError
    └── DecryptionFailed      a ciphertext does not decrypt under the key it names
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from flowlite.config import Config
from flowlite.db import Database
from flowlite.errors import InternalError, UserError
from flowlite.tables import meta

__all__ = [
    "FINGERPRINT",
    "KEY_FILE",
    "Cipher",
    "DecryptionFailed",
    "EncryptionKeyError",
    "StaleKey",
    "check_key",
    "generate_key",
    "load_cipher",
    "parse_key",
    "stored_fingerprint",
    "write_key_file",
]

KEY_FILE = "encryption.key"
FINGERPRINT = "key_fingerprint"
_VERSION = b"\x01"
_FP_BYTES = 8
_NONCE_BYTES = 12
_LABEL = b"flowlite credential key fingerprint v1"


class EncryptionKeyError(UserError):
    """The encryption key is malformed, missing, or not the key of this database."""


class DecryptionFailed(InternalError):
    """A stored secret does not decrypt: it was altered, or belongs to another record."""


class StaleKey(DecryptionFailed):
    """A stored secret was encrypted under another key (rotated since this key was loaded)."""

    def __init__(self, message: str, fingerprint: str) -> None:
        super().__init__(message)
        self.fingerprint = fingerprint


def generate_key() -> str:
    """A new random key, base64url without padding."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def parse_key(text: str, source: str) -> bytes:
    """The 32 key bytes of ``text`` (base64url or base64, padding optional)."""
    value = text.strip()
    padded = value + "=" * (-len(value) % 4)
    try:
        key = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise EncryptionKeyError(
            f"{source}: the encryption key must be 32 random bytes written in base64url "
            "(43 characters; `flowlite credentials generate-key` prints one), not a passphrase"
        )
    return key


@dataclass(frozen=True)
class Cipher:
    """AES-256-GCM under one key; ``source`` says where the key came from (for messages)."""

    key: bytes
    source: str
    #: the key file this key was read from (None: from the setting)
    path: Path | None = None

    @property
    def fingerprint(self) -> str:
        return hmac.new(self.key, _LABEL, hashlib.sha256).hexdigest()[: 2 * _FP_BYTES]

    def encrypt(self, plaintext: bytes, associated: str) -> bytes:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(self.key).encrypt(nonce, plaintext, associated.encode())
        return _VERSION + bytes.fromhex(self.fingerprint) + nonce + sealed

    def decrypt(self, envelope: bytes, associated: str) -> bytes:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        head = 1 + _FP_BYTES
        if len(envelope) < head + _NONCE_BYTES + 16 or envelope[:1] != _VERSION:
            raise DecryptionFailed(f"the stored secret of {associated!r} is not an envelope")
        fingerprint = envelope[1:head].hex()
        if fingerprint != self.fingerprint:
            raise StaleKey(
                f"the secret of {associated!r} is encrypted under key {fingerprint}, "
                f"not the loaded key {self.fingerprint}",
                fingerprint,
            )
        nonce, sealed = envelope[head : head + _NONCE_BYTES], envelope[head + _NONCE_BYTES :]
        try:
            return AESGCM(self.key).decrypt(nonce, sealed, associated.encode())
        except InvalidTag:
            raise DecryptionFailed(
                f"the stored secret of {associated!r} does not decrypt: it was altered "
                "or copied from another credential"
            ) from None


def write_key_file(path: Path, key: str) -> None:
    """Write ``key`` to ``path`` (mode 0600, replacing it atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _from_file(path: Path, *, create: bool) -> Cipher | None:
    if not path.exists():
        if not create:
            return None
        write_key_file(path, generate_key())
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise EncryptionKeyError(
            f"{path} is readable by other users (mode {mode:o}): run `chmod 600 {path}`"
        )
    return Cipher(parse_key(path.read_text(encoding="ascii"), str(path)), str(path), path)


def load_cipher(config: Config, *, create: bool = True) -> Cipher:
    """The key of the ``encryption_key`` setting, else of the key file (created if ``create``)."""
    if config.encryption_key:
        return Cipher(
            parse_key(config.encryption_key, "FLOWLITE_ENCRYPTION_KEY"), "FLOWLITE_ENCRYPTION_KEY"
        )
    path = config.data_dir / KEY_FILE
    cipher = _from_file(path, create=create)
    if cipher is None:
        raise EncryptionKeyError(
            f"the credentials of this database are encrypted, but the key file {path} is missing: "
            "restore it from a backup or set FLOWLITE_ENCRYPTION_KEY to the key"
        )
    return cipher


async def stored_fingerprint(connection: AsyncConnection) -> str | None:
    row = (await connection.execute(select(meta.c.value).where(meta.c.key == FINGERPRINT))).first()
    return str(row[0]) if row else None


async def check_key(db: Database, config: Config) -> Cipher:
    """The configured key, checked against (or, on the first start, recorded as) the database's.

    A key file is only created when the database has no key yet. A rotation interrupted after its
    commit (``encryption.key.new`` holding the database's key) is finished here.
    """
    async with db.read() as connection:
        expected = await stored_fingerprint(connection)
    if not config.encryption_key and expected is not None:
        pending = _from_file(config.data_dir / (KEY_FILE + ".new"), create=False)
        if pending is not None and pending.fingerprint == expected:
            os.replace(pending.path or "", config.data_dir / KEY_FILE)
    cipher = load_cipher(config, create=expected is None)
    if expected is None:
        async with db.write() as connection:
            if await stored_fingerprint(connection) is None:
                await connection.execute(
                    meta.insert().values(key=FINGERPRINT, value=cipher.fingerprint)
                )
                return cipher
            expected = await stored_fingerprint(connection)
    if expected != cipher.fingerprint:
        raise EncryptionKeyError(
            f"the encryption key from {cipher.source} (fingerprint {cipher.fingerprint}) is not "
            f"the key this database's credentials are encrypted with (fingerprint {expected}): "
            "start with the original key (FLOWLITE_ENCRYPTION_KEY, or the encryption.key file in "
            "the data directory); to change keys, use `flowlite credentials rotate-key` with the old one"
        )
    return cipher

"""The key and the envelope: format, file mode, associated data, the fingerprint check."""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

import pytest

from flowlite.app import start_server, stop_server
from flowlite.config import Config, load_config
from flowlite.crypto import (
    Cipher,
    DecryptionFailed,
    EncryptionKeyError,
    StaleKey,
    generate_key,
    load_cipher,
    parse_key,
)


def _cipher() -> Cipher:
    return Cipher(parse_key(generate_key(), "test"), "test")


def test_envelope_round_trip_and_associated_data() -> None:
    cipher = _cipher()
    sealed = cipher.encrypt(b"hunter2", "cred-1")
    assert b"hunter2" not in sealed
    assert cipher.encrypt(b"hunter2", "cred-1") != sealed  # a fresh nonce each time
    assert cipher.decrypt(sealed, "cred-1") == b"hunter2"
    with pytest.raises(DecryptionFailed, match="copied from another credential"):
        cipher.decrypt(sealed, "cred-2")
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(DecryptionFailed, match="altered"):
        cipher.decrypt(tampered, "cred-1")
    with pytest.raises(StaleKey) as stale:
        _cipher().decrypt(sealed, "cred-1")
    assert stale.value.fingerprint == cipher.fingerprint


@pytest.mark.parametrize("text", ["correct horse battery staple", "", "abc", "A" * 44 + "!"])
def test_passphrases_and_malformed_keys_are_refused(text: str) -> None:
    with pytest.raises(EncryptionKeyError, match="32 random bytes"):
        parse_key(text, "FLOWLITE_ENCRYPTION_KEY")


def test_key_accepts_padded_and_standard_base64() -> None:
    key = bytes(range(32))
    import base64

    assert parse_key(base64.b64encode(key).decode(), "x") == key
    assert parse_key(base64.urlsafe_b64encode(key).decode().rstrip("="), "x") == key


def test_key_file_is_created_with_mode_0600(tmp_path: Path) -> None:
    config = Config(data_dir=tmp_path)
    cipher = load_cipher(config)
    path = tmp_path / "encryption.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_cipher(config).fingerprint == cipher.fingerprint
    assert cipher.key.hex() not in cipher.fingerprint and len(cipher.fingerprint) == 16
    path.chmod(0o644)
    with pytest.raises(EncryptionKeyError, match="chmod 600"):
        load_cipher(config)


def test_the_key_setting_is_masked_and_not_in_repr() -> None:
    key = generate_key()
    config = load_config(environ={"FLOWLITE_ENCRYPTION_KEY": key})
    assert config.encryption_key == key
    assert key not in repr(config)
    assert config.describe()["encryption_key"] == "***"


async def test_starting_with_another_key_is_refused(tmp_path: Path) -> None:
    first = Config(data_dir=tmp_path / "data", encryption_key=generate_key(), sandbox_size=1)
    state = await start_server(first)
    expected = state.credentials.cipher.fingerprint
    await stop_server(state)
    other = dataclasses.replace(first, encryption_key=generate_key())
    with pytest.raises(EncryptionKeyError) as refused:
        await start_server(other)
    message = refused.value.message
    assert expected in message
    assert Cipher(parse_key(other.encryption_key, "x"), "x").fingerprint in message
    assert "start with the original key" in message
    assert other.encryption_key not in message and first.encryption_key not in message
    # without the setting, no key file is invented for a database that has a key already
    with pytest.raises(EncryptionKeyError, match=r"key file .* is missing"):
        await start_server(dataclasses.replace(first, encryption_key=""))
    assert not (tmp_path / "data" / "encryption.key").exists()
    state = await start_server(first)
    await stop_server(state)

"""Stored credentials: typed secrets, encrypted at rest, handed to nodes through ``ctx.credential``.

A credential has a name (unique), a type from :data:`TYPES` and data: the type's fields. The whole
data is encrypted as one AES-256-GCM envelope (:mod:`flowlite.crypto`) with the credential's id as
associated data. What leaves this module for people (:class:`CredentialInfo`: the API, the CLI)
carries the non-secret fields and the *names* of the secret fields that are set, never a secret.
Only :class:`StoredCredentials`, the engine's credential source, returns decrypted data, to nodes.

Errors: :class:`CredentialInvalid` (a :class:`~flowlite.errors.UserError`) names the field and
the rule, never the value; a missing credential is :class:`~flowlite.errors.NotFound`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from flowlite.audit import append, record
from flowlite.crypto import FINGERPRINT, Cipher, EncryptionKeyError, StaleKey, load_cipher
from flowlite.db import Database
from flowlite.errors import NotFound, UserError
from flowlite.executor import CredentialSource
from flowlite.record import iso_now
from flowlite.tables import credentials, meta

__all__ = [
    "TYPES",
    "CredentialInfo",
    "CredentialInvalid",
    "CredentialType",
    "Field",
    "StoredCredentials",
    "create_credential",
    "delete_credential",
    "get_credential",
    "list_credentials",
    "read_credential",
    "rotate_key",
    "update_credential",
]


class CredentialInvalid(UserError):
    """A credential's name, type or data breaks its type's schema."""


@dataclass(frozen=True)
class Field:
    """One field of a credential type."""

    name: str
    description: str
    kind: str = "string"  # "string", "integer", "boolean"
    secret: bool = False
    required: bool = True
    choices: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.kind,
            "secret": self.secret,
            "required": self.required,
            "description": self.description,
        }
        if self.choices:
            out["choices"] = list(self.choices)
        return out


@dataclass(frozen=True)
class CredentialType:
    """A kind of credential: its fields; ``open`` types take any fields, all treated as secret."""

    name: str
    description: str
    fields: tuple[Field, ...] = ()
    open: bool = False

    def describe(self) -> dict[str, Any]:
        return {
            "type": self.name,
            "description": self.description,
            "fields": [f.describe() for f in self.fields],
            "open": self.open,
        }

    def is_secret(self, name: str) -> bool:
        found = next((f for f in self.fields if f.name == name), None)
        return self.open or found is None or found.secret


_USER = Field("user", "User name")
_PASSWORD = Field("password", "Password", secret=True)
_HOST = Field("host", "Server host name or address")

TYPES: dict[str, CredentialType] = {
    t.name: t
    for t in (
        CredentialType(
            "api_key",
            "A key sent in a header or in the query string (http_request auth `header`/`query`)",
            (
                Field("name", "Header or query parameter name, e.g. X-API-Key"),
                Field("value", "The key", secret=True),
            ),
        ),
        CredentialType(
            "header_auth",
            "Any header and its value (http_request and webhook auth `header`)",
            (Field("name", "Header name"), Field("value", "Header value", secret=True)),
        ),
        CredentialType(
            "basic_auth", "HTTP basic authentication (auth `basic`)", (_USER, _PASSWORD)
        ),
        CredentialType(
            "bearer_token",
            "An `Authorization: Bearer` token (auth `bearer`)",
            (Field("token", "The token", secret=True),),
        ),
        CredentialType(
            "oauth2",
            "OAuth2 client (authorization code or client credentials); tokens are kept here",
            (
                Field(
                    "grant_type", "The flow", choices=("authorization_code", "client_credentials")
                ),
                Field("token_url", "Token endpoint URL"),
                Field(
                    "auth_url", "Authorization endpoint URL (authorization_code)", required=False
                ),
                Field("client_id", "Client id"),
                Field("client_secret", "Client secret", secret=True),
                Field("scope", "Scopes, space separated", required=False),
                Field("access_token", "Current access token", secret=True, required=False),
                Field("refresh_token", "Refresh token", secret=True, required=False),
                Field("expires_at", "When the access token expires (ISO 8601)", required=False),
            ),
        ),
        CredentialType(
            "database",
            "A database connection",
            (
                Field("dialect", "Database kind", choices=("postgresql", "mysql", "sqlite")),
                Field("host", "Server host (not for sqlite)", required=False),
                Field("port", "Server port", kind="integer", required=False),
                Field("database", "Database name (sqlite: file path)"),
                Field("user", "User name", required=False),
                Field("password", "Password", secret=True, required=False),
            ),
        ),
        CredentialType(
            "smtp",
            "An SMTP server for sending mail",
            (
                _HOST,
                Field("port", "Port", kind="integer"),
                Field("user", "User name", required=False),
                Field("password", "Password", secret=True, required=False),
                Field("security", "Transport security", choices=("tls", "starttls", "none")),
            ),
        ),
        CredentialType("generic", "Any fields (every value is treated as secret)", open=True),
    )
}

_KINDS: dict[str, tuple[type, ...]] = {"string": (str,), "integer": (int,), "boolean": (bool,)}


def _type(name: str) -> CredentialType:
    found = TYPES.get(name)
    if found is None:
        raise CredentialInvalid(f"unknown credential type {name!r}: use one of {', '.join(TYPES)}")
    return found


def check_data(kind: CredentialType, data: Any) -> dict[str, Any]:
    """``data`` checked against the type's fields (messages name fields, never values)."""
    if not isinstance(data, dict):
        raise CredentialInvalid("credential data must be a JSON object of fields")
    if kind.open:
        bad = [k for k in data if not isinstance(k, str) or not k]
        if bad or not data:
            raise CredentialInvalid("a generic credential needs at least one named field")
        return dict(data)
    known = {f.name: f for f in kind.fields}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise CredentialInvalid(
            f"{kind.name} credentials have no field(s) {', '.join(unknown)}: "
            f"the fields are {', '.join(known)}"
        )
    cleaned: dict[str, Any] = {}
    for field in kind.fields:
        value = data.get(field.name)
        if value is None or value == "":
            if field.required:
                raise CredentialInvalid(
                    f"field {field.name!r} of a {kind.name} credential is required"
                )
            continue
        expected = _KINDS[field.kind]
        if not isinstance(value, expected) or (field.kind == "integer" and isinstance(value, bool)):
            raise CredentialInvalid(
                f"field {field.name!r} must be {'an' if field.kind == 'integer' else 'a'} {field.kind}"
            )
        if field.choices and value not in field.choices:
            raise CredentialInvalid(
                f"field {field.name!r} must be one of {', '.join(field.choices)}"
            )
        cleaned[field.name] = value
    return cleaned


class CredentialInfo(msgspec.Struct):
    """A credential as people see it: no secret values."""

    id: str
    name: str
    type: str
    created_at: str
    updated_at: str
    #: the non-secret fields and their values
    fields: dict[str, Any]
    #: the names of the secret fields that hold a value
    secrets: list[str]


def _info(row: Any, data: dict[str, Any]) -> CredentialInfo:
    kind = TYPES.get(row.type) or CredentialType(row.type, "", open=True)
    shown = {k: v for k, v in data.items() if not kind.is_secret(k)}
    hidden = sorted(k for k in data if kind.is_secret(k))
    return CredentialInfo(row.id, row.name, row.type, row.created_at, row.updated_at, shown, hidden)


def _encode(cipher: Cipher, credential_id: str, data: dict[str, Any]) -> bytes:
    return cipher.encrypt(json.dumps(data, ensure_ascii=False).encode(), credential_id)


def _decode(cipher: Cipher, row: Any) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(cipher.decrypt(row.data, row.id))
    return value


async def _find(connection: AsyncConnection, reference: str) -> Any:
    query = select(credentials).where(
        (credentials.c.id == reference) | (credentials.c.name == reference)
    )
    rows = (await connection.execute(query)).all()
    if not rows:
        raise NotFound(f"no credential named {reference!r} (see `flowlite credentials list`)")
    return next((r for r in rows if r.id == reference), rows[0])


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise CredentialInvalid("a credential needs a name of 1 to 255 characters")
    return name.strip()


async def _name_free(connection: AsyncConnection, name: str, own_id: str | None = None) -> None:
    found = (
        await connection.execute(select(credentials.c.id).where(credentials.c.name == name))
    ).first()
    if found is not None and found[0] != own_id:
        from flowlite.store import Conflict

        raise Conflict(f"a credential named {name!r} exists already")


async def create_credential(
    db: Database, cipher: Cipher, name: Any, type_name: Any, data: Any, *, actor: str = "system"
) -> CredentialInfo:
    """Validate, encrypt and store a new credential."""
    from flowlite.store import new_id

    clean_name = _check_name(name)
    kind = _type(str(type_name))
    clean = check_data(kind, data)
    now = iso_now()
    credential_id = new_id()
    row = {
        "id": credential_id,
        "name": clean_name,
        "type": kind.name,
        "created_at": now,
        "updated_at": now,
    }
    async with db.write() as connection:
        await _name_free(connection, clean_name)
        await connection.execute(
            credentials.insert().values(**row, data=_encode(cipher, credential_id, clean))
        )
        details = {"name": clean_name, "type": kind.name}
        await append(
            connection,
            "credential.create",
            "credential",
            credential_id,
            actor=actor,
            details=details,
        )
    return _info(_Row(**row), clean)


class _Row(msgspec.Struct):
    id: str
    name: str
    type: str
    created_at: str
    updated_at: str


async def update_credential(
    db: Database,
    cipher: Cipher,
    reference: str,
    *,
    name: Any = None,
    data: Any = None,
    actor: str = "system",
) -> CredentialInfo:
    """Rename and/or change fields; fields left out of ``data`` keep their value (a field set
    to null or "" is cleared)."""
    async with db.write() as connection:
        row = await _find(connection, reference)
        kind = _type(row.type)
        current = _decode(cipher, row)
        if data is not None:
            if not isinstance(data, dict):
                raise CredentialInvalid("credential data must be a JSON object of fields")
            merged = {**current, **data}
            current = check_data(kind, {k: v for k, v in merged.items() if v is not None})
        new_name = row.name if name is None else _check_name(name)
        await _name_free(connection, new_name, row.id)
        now = iso_now()
        await connection.execute(
            credentials.update()
            .where(credentials.c.id == row.id)
            .values(name=new_name, data=_encode(cipher, row.id, current), updated_at=now)
        )
        changed = sorted(data) if isinstance(data, dict) else []
        details = {"name": new_name, "fields": changed}
        await append(
            connection, "credential.update", "credential", row.id, actor=actor, details=details
        )
        updated = _Row(row.id, new_name, row.type, row.created_at, now)
    return _info(updated, current)


async def delete_credential(
    db: Database, reference: str, *, actor: str = "system"
) -> CredentialInfo:
    """Delete a credential; returns what it was (without secrets)."""
    async with db.write() as connection:
        row = await _find(connection, reference)
        await connection.execute(credentials.delete().where(credentials.c.id == row.id))
        details = {"name": row.name, "type": row.type}
        await append(
            connection, "credential.delete", "credential", row.id, actor=actor, details=details
        )
    return _info(row, {})


async def list_credentials(db: Database, cipher: Cipher) -> list[CredentialInfo]:
    async with db.read() as connection:
        rows = (await connection.execute(select(credentials).order_by(credentials.c.name))).all()
    return [_info(row, _decode(cipher, row)) for row in rows]


async def get_credential(db: Database, cipher: Cipher, reference: str) -> CredentialInfo:
    async with db.read() as connection:
        row = await _find(connection, reference)
    return _info(row, _decode(cipher, row))


async def read_credential(
    db: Database, cipher: Cipher, reference: str
) -> tuple[Any, dict[str, Any]]:
    """The row and the decrypted data of a credential (for the engine only)."""
    async with db.read() as connection:
        row = await _find(connection, reference)
    return row, _decode(cipher, row)


async def rotate_key(db: Database, old: Cipher, new: Cipher, *, actor: str = "system") -> int:
    """Re-encrypt every credential under ``new`` and record its fingerprint, in ONE transaction
    (all or nothing); returns how many credentials were re-encrypted."""
    async with db.write() as connection:
        stored = (
            await connection.execute(select(meta.c.value).where(meta.c.key == FINGERPRINT))
        ).first()
        if stored is not None and stored[0] != old.fingerprint:
            raise EncryptionKeyError(
                f"the current key (fingerprint {old.fingerprint}) is not this database's key "
                f"(fingerprint {stored[0]})"
            )
        rows = (await connection.execute(select(credentials))).all()
        for row in rows:
            data = old.decrypt(row.data, row.id)
            await connection.execute(
                credentials.update()
                .where(credentials.c.id == row.id)
                .values(data=new.encrypt(data, row.id))
            )
        if stored is None:
            await connection.execute(meta.insert().values(key=FINGERPRINT, value=new.fingerprint))
        else:
            await connection.execute(
                meta.update().where(meta.c.key == FINGERPRINT).values(value=new.fingerprint)
            )
        details = {"credentials": len(rows), "old": old.fingerprint, "new": new.fingerprint}
        await append(
            connection,
            "credentials.rotate_key",
            "key",
            new.fingerprint,
            actor=actor,
            details=details,
        )
    return len(rows)


#: called after each use of a credential by an execution: (row, workflow id)
UseHook = Callable[[Any, str | None], Awaitable[None]]


class StoredCredentials:
    """The engine's credential source: a credential by id or name, decrypted.

    When the key was rotated by another process (``flowlite credentials rotate-key`` next to a
    running server), a key read from the key file is read again; a key from
    ``FLOWLITE_ENCRYPTION_KEY`` needs a restart with the new value, and the error says so.
    ``fallback`` answers for names the store does not hold (the interim
    ``FLOWLITE_CREDENTIAL_<NAME>`` variables, see :func:`flowlite.runner.env_credentials`).
    """

    def __init__(
        self,
        db: Database,
        cipher: Cipher,
        config: Any = None,
        fallback: CredentialSource | None = None,
        on_use: UseHook | None = None,
    ) -> None:
        self.db = db
        self.cipher = cipher
        self.config = config
        self.fallback = fallback
        self.on_use = on_use if on_use is not None else self._audit_use
        self._reload = asyncio.Lock()

    async def __call__(self, reference: str, *, workflow_id: str | None) -> dict[str, Any]:
        try:
            row, data = await self._read(reference)
        except NotFound:
            if self.fallback is None:
                raise
            return await self.fallback(reference, workflow_id=workflow_id)
        await self.on_use(row, workflow_id)
        return data

    async def _audit_use(self, row: Any, workflow_id: str | None) -> None:
        actor = f"workflow:{workflow_id}" if workflow_id else "workflow"
        details = {"name": row.name, "workflow_id": workflow_id}
        await record(self.db, "credential.use", "credential", row.id, actor=actor, details=details)

    async def _read(self, reference: str) -> tuple[Any, dict[str, Any]]:
        for attempt in range(40):
            try:
                return await read_credential(self.db, self.cipher, reference)
            except StaleKey as exc:
                if self.cipher.path is None or self.config is None:
                    raise EncryptionKeyError(
                        f"the credentials were re-encrypted under another key ({exc.fingerprint}) "
                        "since the server started: restart it with the new FLOWLITE_ENCRYPTION_KEY"
                    ) from None
                async with self._reload:
                    fresh = load_cipher(self.config, create=False)
                    if fresh.fingerprint == exc.fingerprint:
                        self.cipher = fresh
                    elif attempt < 39:  # the rotation committed; its key file follows at once
                        await asyncio.sleep(0.05)
        raise EncryptionKeyError("the key file does not hold the key the credentials use")

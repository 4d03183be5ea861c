"""``/api/v1/credentials``: create, list, read, update and delete stored credentials.

No response carries a secret: a credential is shown with its non-secret fields and the names of
its secret fields that are set (:class:`~flowlite.credentials.CredentialInfo`). An update keeps
the fields its ``data`` leaves out, so a client can rename or change one field without knowing
the others.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, delete, get, post, put

from flowlite.credentials import (
    TYPES,
    CredentialInfo,
    StoredCredentials,
    create_credential,
    delete_credential,
    get_credential,
    list_credentials,
    update_credential,
)
from flowlite.state import ServerState

__all__ = ["CredentialChange", "CredentialController", "NewCredential"]


class NewCredential(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    type: str
    data: dict[str, Any]


class CredentialChange(msgspec.Struct, forbid_unknown_fields=True):
    name: str | None = None
    #: fields to change; fields left out keep their value, null clears an optional one
    data: dict[str, Any] | None = None


def _store(state: ServerState) -> StoredCredentials:
    store: StoredCredentials = state.credentials
    return store


class CredentialController(Controller):
    path = "/api/v1/credentials"
    tags = ["credentials"]

    @get("/")
    async def list_credentials(self, flowlite: ServerState) -> list[CredentialInfo]:
        """Every credential, by name, without secrets."""
        return await list_credentials(flowlite.db, _store(flowlite).cipher)

    @get("/types")
    async def list_types(self) -> list[dict[str, Any]]:
        """The credential types and their fields."""
        return [kind.describe() for kind in TYPES.values()]

    @post("/", status_code=201)
    async def create_credential(self, flowlite: ServerState, data: NewCredential) -> CredentialInfo:
        """Store a new credential (its data encrypted)."""
        store = _store(flowlite)
        return await create_credential(
            flowlite.db, store.cipher, data.name, data.type, data.data, actor="api"
        )

    @get("/{reference:str}")
    async def get_credential(self, flowlite: ServerState, reference: str) -> CredentialInfo:
        """One credential by id or name, without secrets."""
        return await get_credential(flowlite.db, _store(flowlite).cipher, reference)

    @put("/{reference:str}")
    async def update_credential(
        self, flowlite: ServerState, reference: str, data: CredentialChange
    ) -> CredentialInfo:
        """Rename a credential or change some of its fields."""
        store = _store(flowlite)
        return await update_credential(
            flowlite.db, store.cipher, reference, name=data.name, data=data.data, actor="api"
        )

    @delete("/{reference:str}")
    async def delete_credential(self, flowlite: ServerState, reference: str) -> None:
        await delete_credential(flowlite.db, reference, actor="api")

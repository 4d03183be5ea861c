"""``/api/v1/audit``: the audit log, newest first, paged by sequence number.

Not guarded yet: until users and roles exist every API client may read it (it holds no secrets);
the next step restricts it to project admins.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import Parameter

from flowlite.audit import AuditPage, Verification, list_entries, verify
from flowlite.state import ServerState

__all__ = ["AuditController"]


class AuditController(Controller):
    path = "/api/v1/audit"
    tags = ["audit"]

    @get("/")
    async def list_audit(
        self,
        flowlite: ServerState,
        limit: Annotated[int, Parameter(ge=1, le=500, description="Entries per page.")] = 50,
        before: Annotated[
            int | None, Parameter(ge=1, description="Only entries older than this `seq`.")
        ] = None,
        action: Annotated[str | None, Parameter(description="Only this action.")] = None,
    ) -> AuditPage:
        """Audit entries, newest first; follow ``next_before`` for older ones."""
        return await list_entries(flowlite.db, limit=limit, before=before, action=action)

    @get("/verify")
    async def verify_audit(self, flowlite: ServerState) -> Verification:
        """Check the hash chain; names the first entry that was edited, deleted or moved."""
        return await verify(flowlite.db)

"""The `respond_to_webhook` node: answers the webhook request that started the execution.

``respond_with`` chooses the answer (expressions in ``body``, ``location``, ``status`` and
``headers`` see the first input item):

- ``first_item``: the first item's json, as JSON (``{}`` when there is no item);
- ``all_items``: a JSON list of every item's json;
- ``json``: ``body`` serialised as JSON (a text body is sent as a JSON string; parse JSON text
  first with ``{{ json_loads(...) }}``);
- ``text``: ``body`` as ``text/plain`` (objects and lists as JSON text);
- ``binary``: the bytes of the first item's binary field ``binary_field`` (default ``data``),
  with its ``mime_type``;
- ``redirect``: an empty body and a ``Location: <location>`` header; status 307 unless
  ``status`` is given;
- ``no_data``: an empty body.

A ``Content-Type`` in ``headers`` replaces the content type chosen above. Only the first
response of an execution counts; later ones are ignored. The node passes its items on.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from typing import Any

from flowlite.errors import NodeError
from flowlite.sdk import Item, NodeContext, NodeType, Outputs, Param, WebhookResponse

__all__ = ["NODES", "RespondToWebhook"]

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"


class RespondToWebhook(NodeType):
    type = "respond_to_webhook"
    display_name = "Respond to webhook"
    category = "flow"
    description = "Answers the webhook request that started the execution; passes items on."
    params = (
        Param(
            "respond_with",
            "options",
            "What to answer with",
            options=("first_item", "all_items", "json", "text", "binary", "redirect", "no_data"),
            default="first_item",
            expressions=False,
        ),
        Param("body", "json", "The body for `json` and `text` (value or expression)"),
        Param("location", "string", "The URL to redirect to, for `redirect`"),
        Param(
            "binary_field",
            "string",
            "For `binary`: the first item's binary field to send",
            default="data",
        ),
        Param(
            "status",
            "integer",
            "The HTTP status (default 200; 307 for redirect)",
            default=200,
            minimum=100,
            maximum=599,
        ),
        Param("headers", "map", "Extra response headers"),
    )

    def check(self, parameters: dict[str, Any]) -> list[tuple[str, str]]:
        mode = parameters.get("respond_with", "first_item")
        if mode == "redirect" and not parameters.get("location"):
            return [("location", "`redirect` needs `location`: the URL to redirect to")]
        if mode in ("json", "text") and "body" not in parameters:
            return [("body", f"`{mode}` needs `body`")]
        return []

    async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
        mode = ctx.parameters.get("respond_with") or "first_item"
        status_default = 307 if mode == "redirect" else 200
        status = ctx.param("status", 0, status_default)
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise NodeError(
                f"parameter 'status' must be an HTTP status (100..599), got {status!r}",
                node=ctx.node_name,
            )
        headers = _headers(ctx.param("headers", 0, {}), ctx.node_name)
        response = WebhookResponse(status=status, headers=headers)
        if mode == "first_item":
            response.body = _json_bytes(items[0]["json"] if items else {}, ctx.node_name)
            response.content_type = JSON
        elif mode == "all_items":
            response.body = _json_bytes([it["json"] for it in items], ctx.node_name)
            response.content_type = JSON
        elif mode == "json":
            response.body = _json_bytes(ctx.param("body", 0, None), ctx.node_name)
            response.content_type = JSON
        elif mode == "text":
            body = ctx.param("body", 0, "")
            text = body if isinstance(body, str) else _json_bytes(body, ctx.node_name).decode()
            response.body = text.encode("utf-8")
            response.content_type = TEXT
        elif mode == "binary":
            field = ctx.param("binary_field", 0) or "data"
            response.body, response.content_type = _binary(items, field, ctx.node_name)
        elif mode == "redirect":
            location = ctx.param("location", 0)
            if not isinstance(location, str) or not location.strip():
                raise NodeError(
                    f"parameter 'location' must be a URL, got {location!r}", node=ctx.node_name
                )
            response.headers["Location"] = location.strip()
        for name in [n for n in response.headers if n.lower() == "content-type"]:
            response.content_type = response.headers.pop(name)
        ctx.respond(response)
        return {"main": items}


def _headers(value: Any, node: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise NodeError(f"parameter 'headers' must be an object, got {value!r}", node=node)
    headers: dict[str, str] = {}
    for name, header in value.items():
        text = header if isinstance(header, str) else json.dumps(header, default=str)
        if "\n" in text or "\r" in text or "\n" in name or "\r" in name:
            raise NodeError(f"header {name!r} must not contain line breaks", node=node)
        headers[str(name)] = text
    return headers


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    raise TypeError(f"a {type(value).__name__} value cannot be sent as JSON")


def _json_bytes(value: Any, node: str) -> bytes:
    try:
        return json.dumps(value, default=_json_default, ensure_ascii=False, allow_nan=False).encode(
            "utf-8"
        )
    except (TypeError, ValueError) as exc:
        raise NodeError(f"the response body is not JSON: {exc}", node=node) from None


def _binary(items: list[Item], field: str, node: str) -> tuple[bytes, str]:
    binary = (items[0].get("binary") or {}).get(field) if items else None
    if not isinstance(binary, dict):
        raise NodeError(f"the first item has no binary field {field!r}", node=node)
    data = binary.get("data")
    if not isinstance(data, str):
        raise NodeError(f"binary field {field!r} holds no inline base64 `data`", node=node)
    try:
        content = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise NodeError(f"binary field {field!r} is not valid base64", node=node) from None
    return content, binary.get("mime_type") or "application/octet-stream"


NODES: list[type[NodeType]] = [RespondToWebhook]

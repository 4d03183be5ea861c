"""The ``http_request`` node: call an HTTP API once per item, with retries and pagination.

Where the catalog leaves room, these are the decisions:

**How many requests.** One per input item. When no request parameter holds an expression and the
body uploads none of the item's binary data, one request in all, whatever the number of items; a
failure of that request fails the node run as a whole.

**Responses to items.** ``response: auto`` reads JSON when the content type says JSON (text when
such a body does not parse), text for ``text/*``, XML and JavaScript, anything else as binary.
A JSON object is one item; a JSON list one item per element (an object is the item's json, another
value goes under ``data``); any other JSON value ``{"data": value}``; an empty body ``{}``. Text is
``{"data": text}``; binary ``{"json": {}, "binary": {"data": {mime_type, file_name, size, data}}}``.
With ``full_response`` each response is one item ``{status, headers, body}`` (a list body is not
split; a binary body is attached as ``binary.data`` and ``body`` is null). Every page of a paginated
request gives its items in turn (see :mod:`flowlite.nodes.http_pagination`).

**Errors.** A status from 400 on fails the item, naming the item, the method, the URL without its
query and user info, the status and the start of the body, unless ``never_error``. With
``follow_redirects`` false a 3xx response is output like any other. A 429 or 503 is tried up to 3
times, waiting as ``Retry-After`` says (seconds or an HTTP date, at most 60 s a wait), else 1 s
then 2 s. A response body over 64 MB fails. ``timeout`` counts for each try as a whole.

**Credentials.** ``auth`` says how to use the credential in slot ``auth``: ``basic`` needs
``{user, password}``, ``header`` and ``query`` need ``{name, value}``, ``bearer`` needs
``{token}``. The node never puts a secret into its output, its error messages or its logs (what a
server echoes back in a body it outputs is the server's doing).

**Bodies.** ``json``: any JSON value (text is sent as written when it is JSON). ``form``: an
object, URL-encoded. ``multipart``: an object whose values are fields, lists of fields, or
``{"binary": "<field>"}`` to upload one of the item's binary fields as a file. ``raw``: text, or
``{"binary": "<field>"}``, sent as ``content_type`` (default: the binary's type, else text/plain).
Objects inside form and multipart fields and in ``query`` values are sent as JSON text.

**Batching.** At most ``batch.size`` requests are in flight at once (default 10); with
``batch.interval`` (ms) the node waits that long between groups. Outputs keep the input order.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import json
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flowlite import __version__
from flowlite.errors import ExpressionError, NodeError
from flowlite.nodes.http_pagination import (
    PAGINATION_PARAM,
    Fetched,
    Pagination,
    ResponseTooLarge,
    body_items,
    decode_body,
    error_excerpt,
    pagination_problems,
    read_limited,
    retry_delay,
    safe_url,
)
from flowlite.sdk import Item, NodeContext, NodeType, Outputs, Param

if TYPE_CHECKING:
    import ssl

    import httpx

__all__ = ["NODES", "HttpRequest"]

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
DEFAULT_CONCURRENCY = 10
MAX_TRIES = 3
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
#: the parameters that shape a request; when none holds an expression, one request serves all items
REQUEST_PARAMS = (
    *("method", "url", "query", "headers", "body", "body_type", "content_type", "timeout"),
    *("response", "full_response", "never_error", "follow_redirects"),
)


@dataclass(frozen=True)
class _Auth:
    """What a credential adds to each request, and the secrets to keep out of messages."""

    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()

    def redact(self, text: str) -> str:
        """``text`` with every secret (also URL-encoded) replaced by ``***``."""
        for secret in self.secrets:
            if secret:
                for form in {
                    secret,
                    urllib.parse.quote(secret, safe=""),
                    urllib.parse.quote_plus(secret),
                }:
                    text = text.replace(form, "***")
        return text


def _auth_from(kind: str, credential: dict[str, Any]) -> _Auth:
    def text(*names: str) -> str:
        for name in names:
            value = credential.get(name)
            if isinstance(value, str | int) and not isinstance(value, bool):
                return str(value)
        needs = {"basic": "user, password", "bearer": "token"}.get(kind, "name, value")
        raise NodeError(f"the credential for auth {kind!r} needs the fields {needs}")

    if kind == "basic":
        user, password = text("user", "username"), text("password")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return _Auth(headers={"Authorization": f"Basic {token}"}, secrets=(token, password))
    if kind == "bearer":
        token = text("token")
        return _Auth(headers={"Authorization": f"Bearer {token}"}, secrets=(token,))
    name, value = text("name"), text("value")
    if kind == "header":
        return _Auth(headers={name: value}, secrets=(value,))
    return _Auth(query={name: value}, secrets=(value,))


@dataclass
class _Call:
    """One item's request, its parameters evaluated."""

    label: str | None
    method: str
    url: str
    query: dict[str, Any]
    headers: dict[str, str]
    body: dict[str, Any]
    timeout: float
    response: str
    full_response: bool
    never_error: bool
    follow_redirects: bool

    def where(self, url: str) -> str:
        target = f"{self.method} {safe_url(url)}"
        return f"{self.label}: {target}" if self.label else target


def _type_name(value: Any) -> str:
    names = {bool: "boolean", int: "number", float: "number", str: "text", list: "list"}
    return names.get(type(value), "object" if isinstance(value, dict) else type(value).__name__)


def _text(value: Any) -> str:
    """A query, header or form value as text: JSON for objects and lists, lower-case booleans."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _binary_ref(value: Any) -> str | None:
    if isinstance(value, dict) and len(value) == 1 and isinstance(value.get("binary"), str):
        return str(value["binary"])
    return None


def _uses_binary(body: Any) -> bool:
    if _binary_ref(body) is not None:
        return True
    return isinstance(body, dict) and any(
        _binary_ref(v) is not None or (isinstance(v, list) and any(map(_binary_ref, v)))
        for v in body.values()
    )


def _item_binary(item: Item, name: str) -> tuple[bytes, str, str]:
    """(content, file name, mime type) of the item's binary field ``name``."""
    entry = (item.get("binary") or {}).get(name)
    if not isinstance(entry, dict):
        raise NodeError(f"parameter 'body': the item has no binary field {name!r}")
    data = entry.get("data")
    if not isinstance(data, str):
        raise NodeError(f"parameter 'body': binary field {name!r} holds no inline data")
    try:
        content = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise NodeError(f"parameter 'body': binary field {name!r} is not valid base64") from None
    mime = entry.get("mime_type") or "application/octet-stream"
    return content, str(entry.get("file_name") or name), str(mime)


def _encode_body(body: Any, body_type: str, content_type: Any, item: Item) -> dict[str, Any]:
    """Keyword arguments for ``httpx.build_request`` (plus a default ``content_type``)."""
    if body is None:
        return {}
    if body_type == "json":
        if isinstance(body, str):
            try:
                json.loads(body)
            except ValueError:
                raise NodeError("parameter 'body' is text that is not valid JSON") from None
            return {"content": body.encode(), "content_type": "application/json"}
        return {"json": body}
    if body_type == "raw":
        ref = _binary_ref(body)
        if ref is not None:
            content, _, mime = _item_binary(item, ref)
            return {"content": content, "content_type": content_type or mime}
        if isinstance(body, dict | list):
            raise NodeError("parameter 'body' must be text for body_type 'raw', got an object")
        return {"content": _text(body).encode(), "content_type": content_type or "text/plain"}
    if not isinstance(body, dict):
        kind = _type_name(body)
        raise NodeError(
            f"parameter 'body' must be an object for body_type {body_type!r}, got {kind}"
        )
    if body_type == "form":
        data = {
            k: [_text(e) for e in v] if isinstance(v, list) else _text(v) for k, v in body.items()
        }
        return {"data": data}
    files: list[tuple[str, tuple[str | None, bytes, str | None]]] = []
    for name, value in body.items():
        for element in value if isinstance(value, list) else [value]:
            ref = _binary_ref(element)
            if ref is not None:
                content, file_name, mime = _item_binary(item, ref)
                files.append((name, (file_name, content, mime)))
            else:
                files.append((name, (None, _text(element).encode(), None)))
    return {"files": files}


async def _read_auth(ctx: NodeContext) -> _Auth:
    kind = ctx.parameters.get("auth") or "none"
    if kind == "none":
        return _Auth()
    credential = await ctx.credential("auth")
    return _auth_from(kind, credential if isinstance(credential, dict) else {})


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """The default TLS context, built once: loading the CA bundle takes ~60 ms a time."""
    import httpx

    return httpx.create_ssl_context()


def _origin(url: str) -> tuple[str, str, int | None]:
    import httpx

    parsed = httpx.URL(url)
    return parsed.scheme, parsed.host, parsed.port


class _Requests:
    """The requests of one node run: shared client, credential and pagination."""

    def __init__(
        self,
        ctx: NodeContext,
        items: list[Item],
        client: httpx.AsyncClient,
        auth: _Auth,
        pagination: Pagination | None,
    ) -> None:
        self.ctx = ctx
        self.items = items
        self.client = client
        self.auth = auth
        self.pagination = pagination

    def _param(self, name: str, index: int, expected: str) -> Any:
        """Parameter ``name`` for item ``index``, checked to be of the ``expected`` JSON type."""
        value = self.ctx.param(name, index)
        if value is not None and _type_name(value) != expected:
            article = "an" if expected == "object" else "a"
            raise NodeError(
                f"parameter {name!r} must be {article} {expected}, got {_type_name(value)}"
            )
        return value

    def _option(self, name: str, index: int, options: tuple[str, ...]) -> str:
        value = self.ctx.param(name, index)
        text = value.upper() if name == "method" and isinstance(value, str) else value
        if text not in options:
            listed = ", ".join(options)
            raise NodeError(f"parameter {name!r} must be one of {listed}, got {value!r}")
        return str(text)

    def prepare(self, index: int, label: str | None) -> _Call:
        """Evaluate the request parameters for item ``index``."""
        import httpx

        method = self._option("method", index, METHODS)
        url = self._param("url", index, "text")
        if not url or not url.strip():
            raise NodeError("parameter 'url' is empty")
        url = url.strip()
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            raise NodeError(
                f"parameter 'url' must be an absolute http:// or https:// URL, got {safe_url(url)!r}"
            )
        query = self._param("query", index, "object") or {}
        headers = self._param("headers", index, "object") or {}
        body_type = self._option("body_type", index, ("json", "form", "multipart", "raw"))
        content_type = self._param("content_type", index, "text")
        body = _encode_body(
            self.ctx.param("body", index), body_type, content_type, self.items[index]
        )
        sent_headers = {
            str(k): ", ".join(map(_text, v)) if isinstance(v, list) else _text(v)
            for k, v in headers.items()
            if v is not None
        }
        default_type = body.pop("content_type", None)
        if default_type and not any(k.lower() == "content-type" for k in sent_headers):
            sent_headers["Content-Type"] = default_type
        timeout = self._param("timeout", index, "number")
        if timeout is None or timeout <= 0:
            raise NodeError(f"parameter 'timeout' must be more than 0 seconds, got {timeout}")
        return _Call(
            label=label,
            method=method,
            url=url,
            query={
                str(k): [_text(e) for e in v] if isinstance(v, list) else _text(v)
                for k, v in query.items()
                if v is not None
            },
            headers=sent_headers,
            body=body,
            timeout=float(timeout),
            response=self._option("response", index, ("auto", "json", "text", "binary")),
            full_response=bool(self._param("full_response", index, "boolean")),
            never_error=bool(self._param("never_error", index, "boolean")),
            follow_redirects=bool(self._param("follow_redirects", index, "boolean")),
        )

    async def perform(self, index: int, label: str | None) -> list[Item]:
        """Send item ``index``'s request (and its further pages); return the output items."""
        try:
            return await self._pages(self.prepare(index, label))
        except NodeError as exc:  # a server may echo a secret into the body excerpt
            raise NodeError(self.auth.redact(exc.message), error_class=exc.error_class) from None

    async def _pages(self, call: _Call) -> list[Item]:
        pagination = self.pagination
        origin = _origin(call.url)
        url, query = call.url, pagination.first_query(call.query) if pagination else call.query
        out: list[Item] = []
        page = 0
        while True:
            page += 1
            fetched = await self.fetch(call, url, query, authenticated=_origin(url) == origin)
            kind, body = decode_body(fetched, call.response, call.where(url))
            out.extend(body_items(fetched, kind, body, full=call.full_response))
            if pagination is None:
                return out
            scope = {
                "body": body if kind in ("json", "text") else None,
                "headers": dict(fetched.headers),
                "status": fetched.status,
                "url": fetched.url,
            }
            following = pagination.next_request(
                self.ctx, page=page, url=url, query=query, response=scope
            )
            if following is None:
                return out
            if page >= pagination.max_pages:
                self.ctx.log(f"{call.where(call.url)}: stopped at max_pages ({page} pages)")
                return out
            url, query = following

    async def fetch(
        self, call: _Call, url: str, query: dict[str, Any], *, authenticated: bool
    ) -> Fetched:
        """One request, tried again on 429/503; fails on a status from 400 unless never_error."""
        import httpx

        headers, params = call.headers, query
        if authenticated and (self.auth.headers or self.auth.query):
            headers = {**headers, **self.auth.headers}
            params = {**query, **self.auth.query}
        where = call.where(url)
        tries = 0
        while True:
            tries += 1
            try:
                # merged by hand: httpx replaces a URL's own query with `params`
                target = httpx.URL(url).copy_merge_params(params) if params else url
                request = self.client.build_request(
                    call.method,
                    target,
                    headers=headers,
                    timeout=call.timeout,
                    **call.body,
                )
                async with asyncio.timeout(call.timeout):
                    response = await self.client.send(
                        request, stream=True, follow_redirects=call.follow_redirects
                    )
                    try:
                        content = await read_limited(response, MAX_RESPONSE_BYTES)
                    finally:
                        await response.aclose()
            except (TimeoutError, httpx.TimeoutException):
                raise self._failed(where, f"request timed out after {call.timeout:g} s") from None
            except ResponseTooLarge as exc:
                raise self._failed(where, str(exc)) from None
            except httpx.TooManyRedirects:
                raise self._failed(where, "too many redirects") from None
            except httpx.HTTPError as exc:
                reason = str(exc) or type(exc).__name__
                raise self._failed(where, f"request failed: {reason}") from None
            except (ValueError, TypeError) as exc:  # e.g. a header value httpx cannot send
                raise self._failed(where, f"cannot send the request: {exc}") from None
            fetched = Fetched.of(response, content)
            if fetched.status in (429, 503) and tries < MAX_TRIES:
                delay = retry_delay(response.headers.get("retry-after"), tries)
                self.ctx.log(f"{where}: status {fetched.status}, trying again in {delay:g} s")
                await asyncio.sleep(delay)
                continue
            if fetched.status >= 400 and not call.never_error:
                status = f"status {fetched.status} {fetched.reason}".rstrip()
                excerpt = error_excerpt(fetched)
                raise self._failed(where, f"{status}: {excerpt}" if excerpt else status)
            return fetched

    def _failed(self, where: str, reason: str) -> NodeError:
        return NodeError(f"{where}: {reason}")


class HttpRequest(NodeType):
    type = "http_request"
    display_name = "HTTP request"
    category = "data"
    description = (
        "Calls an HTTP API, one request per item (one in all when no parameter uses item data)."
    )
    params = (
        Param("method", "options", "HTTP method", options=METHODS, default="GET"),
        Param("url", "string", "Absolute http:// or https:// URL", required=True),
        Param("query", "map", "Query parameters (a list value repeats the name)"),
        Param("headers", "map", "Request headers"),
        Param("body", "json", "Request body; its encoding is body_type"),
        Param(
            "body_type",
            "options",
            "How the body is sent",
            options=("json", "form", "multipart", "raw"),
            default="json",
        ),
        Param("content_type", "string", "Content type of a raw body (default text/plain)"),
        Param(
            "auth",
            "options",
            "How the credential in slot `auth` is used: basic {user, password}, header "
            "{name, value}, bearer {token}, query {name, value}",
            options=("none", "basic", "header", "bearer", "query"),
            default="none",
            expressions=False,
        ),
        Param("timeout", "number", "Seconds for each try of a request", default=30),
        Param(
            "response",
            "options",
            "How to read the response body (auto: by its content type)",
            options=("auto", "json", "text", "binary"),
            default="auto",
        ),
        Param(
            "full_response", "boolean", "Output {status, headers, body} per response", default=False
        ),
        Param(
            "never_error", "boolean", "Output 4xx/5xx responses instead of failing", default=False
        ),
        Param("follow_redirects", "boolean", "Follow 3xx redirects", default=True),
        PAGINATION_PARAM,
        Param(
            "batch",
            "object",
            "Requests in flight at once (size, default 10) and ms to wait between groups",
            fields=(
                Param("size", "integer", "Requests sent at once", minimum=1),
                Param("interval", "integer", "Milliseconds between groups", default=0, minimum=0),
            ),
            expressions=False,
        ),
    )

    def check(self, parameters: dict[str, Any]) -> list[tuple[str, str]]:
        problems = pagination_problems(parameters.get("pagination"))
        timeout = parameters.get("timeout")
        if isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout <= 0:
            problems.append(("timeout", "must be more than 0 seconds"))
        body, body_type = parameters.get("body"), parameters.get("body_type")
        if body_type in ("form", "multipart") and isinstance(body, list | int | float | bool):
            problems.append(("body", f"must be an object for body_type {body_type!r}"))
        return problems

    async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
        if not items:
            return {"main": []}
        import httpx

        auth = await _read_auth(ctx)
        pagination = Pagination.from_parameter(ctx.parameters.get("pagination"))
        batch = ctx.parameters.get("batch") or {}
        size = int(batch.get("size") or DEFAULT_CONCURRENCY)
        interval = (batch.get("interval") or 0) / 1000
        once = all(ctx.param_is_static(name) for name in REQUEST_PARAMS) and not _uses_binary(
            ctx.parameters.get("body")
        )
        limits = httpx.Limits(max_connections=max(size, DEFAULT_CONCURRENCY))
        headers = {"User-Agent": f"flowlite/{__version__}"}
        from flowlite.egress import EgressTransport

        # every request and redirect hop is checked against the egress policy (flowlite.egress)
        transport = EgressTransport(limits=limits, verify=_ssl_context())
        async with httpx.AsyncClient(headers=headers, transport=transport) as client:
            requests = _Requests(ctx, items, client, auth, pagination)
            if once:
                return {"main": await requests.perform(0, None)}
            out: list[Item] = []
            for start in range(0, len(items), size):
                if start and interval:
                    await asyncio.sleep(interval)
                group = range(start, min(start + size, len(items)))
                results = await asyncio.gather(
                    *(requests.perform(i, f"item {i}") for i in group), return_exceptions=True
                )
                for index, result in zip(group, results, strict=True):
                    if isinstance(result, NodeError | ExpressionError):
                        failed = ctx.item_error(index, result)
                        if failed is not None:
                            out.append(failed)
                    elif isinstance(result, BaseException):
                        raise result
                    else:
                        out.extend(result)
        return {"main": out}


NODES: list[type[NodeType]] = [HttpRequest]

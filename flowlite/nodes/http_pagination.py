"""The responses of the ``http_request`` node: reading, decoding, retry waits and pagination.

**Decoding.** ``auto`` reads JSON when the content type says JSON (text when such a body does not
parse), text for ``text/*``, XML and JavaScript, anything else as binary. :func:`body_items` turns
a decoded body into items as the node's docstring describes.

**Pagination.** The ``pagination`` parameter is an object with either ``next_url`` or ``page_param``:

- ``next_url``: an expression giving the URL of the next page. A relative link resolves against
  the URL of the last response. A result of null, ``""`` or false ends the pagination, and so
  does a link to the page just fetched. The next request goes to that URL as it is: the node's
  ``query`` is not added again (a next link carries its own query), a ``query`` credential is.
- ``page_param``: the name of a query parameter set to ``start_page`` (default 1) on the first
  request and increased by one for every further page. Without ``stop_when``, a page whose body
  is empty (no body, ``[]``, ``{}`` or ``""``) ends the pagination.
- ``stop_when``: an expression; when true after a response, that response is the last one (its
  items are kept).
- ``max_pages`` (default 100): the most pages one request follows; reaching it while more pages
  remain ends quietly, with a line in the node run's logs.

The expressions are not evaluated against the input item but against the last response: they see
one item whose ``json`` is ``{body, headers, status, page, url}`` (``body`` the decoded body: JSON
value or text, null for a binary body; ``headers`` with lower-case names; ``page`` the number of
responses so far, from 1; ``url`` the response's URL). So ``next_url`` is typically
``{{ json.body.next }}`` or ``{{ json.headers.get('x-next') }}`` and ``stop_when``
``{{ len(json.body.data) < 100 }}``. Functions, ``workflow``, ``execution`` and ``now()`` work as
everywhere; ``node(...)`` and ``vars`` are not available here.

The headers, body and credential are the same for every page. Credentials are sent only to the
scheme, host and port of the first request, so a next link to another host never receives them.
"""

from __future__ import annotations

import base64
import email.message
import email.utils
import json
import mimetypes
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowlite.errors import ExpressionError, NodeError
from flowlite.expressions import Compiled, EvalContext, compile_value, has_expression
from flowlite.sdk import Item, NodeContext, Param

if TYPE_CHECKING:
    import httpx

__all__ = [
    "PAGINATION_PARAM",
    "Fetched",
    "Pagination",
    "ResponseTooLarge",
    "body_items",
    "decode_body",
    "error_excerpt",
    "pagination_problems",
    "read_limited",
    "retry_delay",
    "safe_url",
]

DEFAULT_MAX_PAGES = 100
MAX_RETRY_WAIT = 60.0
EXCERPT_CHARS = 200
_TEXT_TYPES = ("application/xml", "application/javascript", "application/x-www-form-urlencoded")


class ResponseTooLarge(Exception):
    """A response body went past the size limit while it was read."""


def safe_url(url: str) -> str:
    """``url`` fit for messages: without query, fragment and user info (they may hold secrets)."""
    base = url.split("#", 1)[0].split("?", 1)[0]
    scheme, sep, rest = base.partition("://")
    if not sep:
        return base
    host, slash, path = rest.partition("/")
    return f"{scheme}://{host.rpartition('@')[2]}{slash}{path}"


def retry_delay(retry_after: str | None, tries: int, now: float | None = None) -> float:
    """Seconds to wait before try ``tries + 1`` after a 429/503, honouring ``Retry-After``.

    The header holds seconds or an HTTP date; without a usable one the wait is 1 s, then 2 s.
    Every wait is capped at ``MAX_RETRY_WAIT``.
    """
    seconds: float | None = None
    value = (retry_after or "").strip()
    if value.isdigit():
        seconds = float(value)
    elif value:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds is None:
        seconds = float(2 ** (tries - 1))
    return min(max(seconds, 0.0), MAX_RETRY_WAIT)


async def read_limited(response: httpx.Response, limit: int) -> bytes:
    """Read a streamed response's (decoded) body, failing once it passes ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise ResponseTooLarge(f"the response body is larger than {limit / 2**20:g} MB")
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass(frozen=True)
class Fetched:
    """A response read in full."""

    status: int
    reason: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    content: bytes
    url: str
    encoding: str

    @classmethod
    def of(cls, response: httpx.Response, content: bytes) -> Fetched:
        return cls(
            status=response.status_code,
            reason=response.reason_phrase,
            headers={k.lower(): v for k, v in response.headers.items()},
            content=content,
            url=str(response.url),
            encoding=response.charset_encoding or "utf-8",
        )

    @property
    def mime_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def text(self) -> str:
        try:
            return self.content.decode(self.encoding, "replace")
        except LookupError:  # an unknown charset
            return self.content.decode("utf-8", "replace")


def _is_json(mime: str) -> bool:
    return mime in ("application/json", "text/json") or mime.endswith("+json")


def _is_text(mime: str) -> bool:
    return mime.startswith("text/") or mime in _TEXT_TYPES or mime.endswith("+xml")


def _file_name(fetched: Fetched) -> str:
    disposition = fetched.headers.get("content-disposition")
    if disposition:
        message = email.message.Message()
        message["content-disposition"] = disposition
        name = message.get_filename()
        if name:
            return name.replace("/", "_").replace("\\", "_")
    name = safe_url(fetched.url).rstrip("/").rpartition("/")[2]
    if "://" in fetched.url and name == safe_url(fetched.url).partition("://")[2]:
        name = ""  # the URL has no path: its last segment is the host
    name = name or "file"
    if "." not in name:
        name += mimetypes.guess_extension(fetched.mime_type or "") or ""
    return name


def decode_body(fetched: Fetched, mode: str, where: str) -> tuple[str, Any]:
    """``(kind, value)``: ``json`` (a JSON value), ``text``, ``binary`` (a binary entry) or
    ``empty`` (no body, for ``auto`` and ``json``)."""
    mime = fetched.mime_type
    if mode == "auto":
        mode = "json" if _is_json(mime) else "text" if _is_text(mime) else "binary"
        if mode == "binary" and not fetched.content:
            return "empty", None
        if mode == "json" and fetched.content:
            try:
                return "json", json.loads(fetched.content)
            except ValueError:
                return "text", fetched.text()
    if mode == "json":
        if not fetched.content.strip():
            return "empty", None
        try:
            return "json", json.loads(fetched.content)
        except ValueError as exc:
            raise NodeError(
                f"{where}: the response is not valid JSON ({exc}): {error_excerpt(fetched)}"
            ) from None
    if mode == "text":
        return "text", fetched.text()
    binary = {
        "mime_type": mime or "application/octet-stream",
        "file_name": _file_name(fetched),
        "size": len(fetched.content),
        "data": base64.b64encode(fetched.content).decode("ascii"),
    }
    return "binary", binary


def body_items(fetched: Fetched, kind: str, value: Any, *, full: bool) -> list[Item]:
    """The output items of one decoded response."""
    if full:
        body = value if kind in ("json", "text") else None
        out: Item = {"json": {"status": fetched.status, "headers": fetched.headers, "body": body}}
        if kind == "binary":
            out["binary"] = {"data": value}
        return [out]
    if kind == "binary":
        return [{"json": {}, "binary": {"data": value}}]
    if kind == "text":
        return [{"json": {"data": value}}]
    if value is None:
        return [{"json": {}}]
    if isinstance(value, dict):
        return [{"json": value}]
    if isinstance(value, list):
        return [{"json": v} if isinstance(v, dict) else {"json": {"data": v}} for v in value]
    return [{"json": {"data": value}}]


def error_excerpt(fetched: Fetched) -> str:
    """The start of a failed response's body, on one line, for an error message."""
    if not fetched.content:
        return ""
    mime = fetched.mime_type
    if mime and not (_is_json(mime) or _is_text(mime)):
        return f"({len(fetched.content)} bytes of {mime})"
    text = " ".join(fetched.text().split())
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS].rstrip() + "..."


PAGINATION_PARAM = Param(
    "pagination",
    "object",
    "Follow further pages of each request: give next_url or page_param",
    fields=(
        Param(
            "next_url",
            "string",
            "Expression over the last response giving the next page's URL, e.g. "
            "{{ json.body.next }}; empty ends",
        ),
        Param(
            "page_param",
            "string",
            "Query parameter holding the page number, increased by one per page",
            expressions=False,
        ),
        Param(
            "start_page",
            "integer",
            "The page_param value of the first request",
            default=1,
            expressions=False,
        ),
        Param(
            "stop_when",
            "string",
            "Expression over the last response; true makes it the last page, e.g. "
            "{{ len(json.body) == 0 }}",
        ),
        Param(
            "max_pages",
            "integer",
            "The most pages one request follows",
            default=DEFAULT_MAX_PAGES,
            minimum=1,
            expressions=False,
        ),
    ),
    expressions=False,
)


def pagination_problems(value: Any) -> list[tuple[str, str]]:
    """Cross-field rules of ``pagination`` beyond its schema."""
    if not isinstance(value, dict):
        return []
    problems: list[tuple[str, str]] = []
    has_next, has_page = value.get("next_url") is not None, value.get("page_param") is not None
    if has_next == has_page:
        problems.append(("pagination", "give exactly one of `next_url` or `page_param`"))
    for name, example in (
        ("next_url", "{{ json.body.next }}"),
        ("stop_when", "{{ not json.body }}"),
    ):
        text = value.get(name)
        if isinstance(text, str) and not has_expression(text):
            problems.append(
                (
                    f"pagination.{name}",
                    f"must be an expression over the last response, like {example}",
                )
            )
    page_param = value.get("page_param")
    if isinstance(page_param, str) and not page_param.strip():
        problems.append(("pagination.page_param", "must not be empty"))
    return problems


def _is_empty(body: Any) -> bool:
    return body is None or body == "" or body == [] or body == {}


@dataclass(frozen=True)
class Pagination:
    """A validated ``pagination`` parameter, its expressions compiled once per node run."""

    next_url: Compiled | None
    page_param: str | None
    start_page: int
    stop_when: Compiled | None
    max_pages: int

    @classmethod
    def from_parameter(cls, value: Any) -> Pagination | None:
        """The pagination of a node's raw parameter, or ``None`` when it has none."""
        if not isinstance(value, dict) or not value:
            return None
        next_url, stop_when = value.get("next_url"), value.get("stop_when")
        start_page = value.get("start_page")
        return cls(
            next_url=compile_value(next_url) if next_url is not None else None,
            page_param=value.get("page_param"),
            start_page=1 if start_page is None else int(start_page),
            stop_when=compile_value(stop_when) if stop_when is not None else None,
            max_pages=int(value.get("max_pages") or DEFAULT_MAX_PAGES),
        )

    def first_query(self, query: dict[str, Any]) -> dict[str, Any]:
        """The query of the first request."""
        if self.page_param is None:
            return query
        return {**query, self.page_param: self.start_page}

    def next_request(
        self,
        ctx: NodeContext,
        *,
        page: int,
        url: str,
        query: dict[str, Any],
        response: dict[str, Any],
    ) -> tuple[str, dict[str, Any]] | None:
        """Where the page after ``page`` is, given the last ``response``; ``None`` at the end.

        ``url`` and ``query`` are those of the last request; ``response`` is the expressions'
        scope ``{body, headers, status, url}`` (``page`` is added here).
        """
        scope = {**response, "page": page}
        if self.stop_when is not None:
            if _evaluate(ctx, self.stop_when, scope, "stop_when"):
                return None
        elif self.page_param is not None and _is_empty(response.get("body")):
            return None
        if self.page_param is not None:
            return url, {**query, self.page_param: self.start_page + page}
        assert self.next_url is not None  # one of the two (checked by pagination_problems)
        target = _evaluate(ctx, self.next_url, scope, "next_url")
        if target is None or target is False or target == "":
            return None
        if not isinstance(target, str):
            kind = type(target).__name__
            raise NodeError(f"parameter 'pagination.next_url' must give a URL, got {kind}")
        import httpx

        try:
            joined = str(httpx.URL(response["url"]).join(target.strip()))
        except httpx.InvalidURL:
            raise NodeError(
                "parameter 'pagination.next_url' gave a link that is not a valid URL"
            ) from None
        if joined == response["url"]:
            return None
        return joined, {}


def _evaluate(ctx: NodeContext, compiled: Compiled, scope: dict[str, Any], label: str) -> Any:
    context = EvalContext(
        items=[{"json": scope}],
        node_output=lambda name: None,
        workflow=ctx.workflow,
        execution={"id": ctx.execution_id, "mode": ctx.mode, "resume_url": None},
        vars={},
        timezone=ctx.timezone,
    )
    try:
        return compiled.evaluate(context, 0)
    except ExpressionError as exc:
        raise NodeError(
            f"parameter 'pagination.{label}': {exc.message}", error_class="ExpressionError"
        ) from None

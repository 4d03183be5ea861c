"""A real HTTP server on 127.0.0.1 with programmable routes, for tests that make HTTP requests.

The server is ``http.server.ThreadingHTTPServer`` on an ephemeral port, running in a thread, so it
answers while the test's event loop waits on the client. Use it through the ``http_server``
fixture (tests/nodes/conftest.py)::

    async def test_x(http_server):
        url = http_server.url("/echo")
        http_server.route("/secure", lambda request: Response.json({"ok": True}))

Every request is recorded in ``server.requests`` (a :class:`Request` each). Built-in routes take
their settings from the query string:

=================================  ==============================================================
``/echo``                          JSON of what arrived: method, path, query, headers, body (text),
                                   ``json`` (parsed JSON body), ``form`` (URL-encoded body) and
                                   ``parts`` (multipart body)
``/status?code=500``               that status with a JSON body ``{"error": "status 500"}``
``/redirect?to=/echo&code=302``    a redirect
``/retry?key=k&status=429&times=1&after=0[&date=1]``
                                   ``status`` (with ``Retry-After: after``, in seconds or as an
                                   HTTP date) for the first ``times`` requests of ``key``, then
                                   ``{"ok": true, "attempt": n}``
``/pages?total=5&size=2[&param=page]``
                                   page ``param`` (from 1) of ``total`` numbered records, a JSON
                                   list; ``[]`` past the end
``/cursor?page=1&last=3[&absolute=1]``
                                   ``{"data": [..], "next": link or null}``, the link relative
                                   unless ``absolute``
``/png[?name=dot.png]``            a 1x1 PNG image (with a Content-Disposition file name if given)
``/text[?charset=latin-1]``        ``text/plain`` "héllo wörld"
``/slow?seconds=2``                ``{"slow": true}`` after a delay
``/concurrent?delay=0.2``          ``{"n": …}`` after a delay; ``max_in_flight`` counts overlap
=================================  ==============================================================
"""

from __future__ import annotations

import email.utils
import json
import threading
import time
import urllib.parse
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["PNG", "Request", "Response", "TestServer"]

#: a valid 1x1 transparent PNG
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000b49444154789c6360000200000500017a5eab3f0000000049454e44ae426082"
)


@dataclass
class Request:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return cls(
            status,
            json.dumps(value).encode(),
            {"Content-Type": "application/json", **(headers or {})},
        )

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain") -> Response:
        return cls(status, text.encode(), {"Content-Type": f"{content_type}; charset=utf-8"})


Handler = Callable[[Request], Response]


class TestServer:
    """The server and what it saw. ``start()`` it, ``url(path)`` to reach it, ``stop()`` it."""

    __test__ = False

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {
            "/echo": self._echo,
            "/status": self._status,
            "/redirect": self._redirect,
            "/retry": self._retry,
            "/pages": self._pages,
            "/cursor": self._cursor,
            "/png": self._png,
            "/text": self._text,
            "/slow": self._slow,
            "/concurrent": self._concurrent,
        }
        self.requests: list[Request] = []
        self.counters: dict[str, int] = defaultdict(int)
        #: ("start" | "end", path with query) in the order requests began and were answered
        self.events: list[tuple[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life -------------------------------------------------------------------------------
    def start(self) -> None:
        server = _Server(("127.0.0.1", 0), _make_handler(self))
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    @property
    def base(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def route(self, path: str, handler: Handler) -> None:
        self.routes[path] = handler

    def paths(self) -> list[str]:
        """The paths requested so far, in order."""
        return [r.path for r in self.requests]

    # -- dispatch -----------------------------------------------------------------------------
    def handle(self, request: Request, label: str) -> Response:
        with self.lock:
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.events.append(("start", label))
        try:
            handler = self.routes.get(request.path)
            if handler is None:
                return Response.json({"error": f"no route {request.path}"}, 404)
            return handler(request)
        finally:
            with self.lock:
                self.in_flight -= 1
                self.events.append(("end", label))

    # -- built-in routes ---------------------------------------------------------------------
    def _echo(self, request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        parsed: Any = None
        form: Any = None
        parts: list[dict[str, Any]] | None = None
        if "json" in content_type:
            parsed = json.loads(request.body or b"null")
        elif "x-www-form-urlencoded" in content_type:
            form = urllib.parse.parse_qs(request.body.decode())
        elif content_type.startswith("multipart/"):
            parts = _multipart(content_type, request.body)
        return Response.json(
            {
                "method": request.method,
                "path": request.path,
                "query": request.query,
                "headers": request.headers,
                "body": request.body.decode("utf-8", "replace"),
                "json": parsed,
                "form": form,
                "parts": parts,
            }
        )

    def _status(self, request: Request) -> Response:
        code = int(request.arg("code", "500") or 500)
        return Response.json({"error": f"status {code}"}, code)

    def _redirect(self, request: Request) -> Response:
        code = int(request.arg("code", "302") or 302)
        return Response(code, b"", {"Location": request.arg("to", "/echo") or "/echo"})

    def _retry(self, request: Request) -> Response:
        key = request.arg("key", "retry") or "retry"
        with self.lock:
            self.counters[key] += 1
            attempt = self.counters[key]
        if attempt <= int(request.arg("times", "1") or 1):
            status = int(request.arg("status", "429") or 429)
            headers: dict[str, str] = {}
            after = request.arg("after")
            if after is not None:
                if request.arg("date"):
                    headers["Retry-After"] = email.utils.formatdate(
                        time.time() + float(after), usegmt=True
                    )
                else:
                    headers["Retry-After"] = after
            return Response.json({"error": "try later", "attempt": attempt}, status, headers)
        return Response.json({"ok": True, "attempt": attempt})

    def _pages(self, request: Request) -> Response:
        total = int(request.arg("total", "5") or 5)
        size = int(request.arg("size", "2") or 2)
        page = int(request.arg(request.arg("param", "page") or "page", "1") or 1)
        start = (page - 1) * size + 1
        records = [{"id": n, "page": page} for n in range(start, min(total, start + size - 1) + 1)]
        return Response.json(records)

    def _cursor(self, request: Request) -> Response:
        page = int(request.arg("page", "1") or 1)
        last = int(request.arg("last", "3") or 3)
        link: str | None = None
        if page < last:
            link = f"/cursor?page={page + 1}&last={last}"
            if request.arg("absolute"):
                link = self.base + link + "&absolute=1"
        return Response.json({"data": [{"id": page * 10 + k} for k in (1, 2)], "next": link})

    def _png(self, request: Request) -> Response:
        headers = {"Content-Type": "image/png"}
        name = request.arg("name")
        if name:
            headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return Response(200, PNG, headers)

    def _text(self, request: Request) -> Response:
        charset = request.arg("charset", "utf-8") or "utf-8"
        return Response(
            200, "héllo wörld".encode(charset), {"Content-Type": f"text/plain; charset={charset}"}
        )

    def _slow(self, request: Request) -> Response:
        time.sleep(float(request.arg("seconds", "2") or 2))
        return Response.json({"slow": True})

    def _concurrent(self, request: Request) -> Response:
        time.sleep(float(request.arg("delay", "0.2") or 0.2))
        return Response.json({"n": request.arg("n")})


def _multipart(content_type: str, body: bytes) -> list[dict[str, Any]]:
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    parts: list[dict[str, Any]] = []
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        filename = part.get_filename()
        parts.append(
            {
                "name": part.get_param("name", header="content-disposition"),
                "filename": filename,
                "content_type": part.get_content_type() if filename else None,
                "size": len(payload),
                "text": None if filename else payload.decode(),
                "bytes_hex": payload.hex() if filename else None,
            }
        )
    return parts


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # the default backlog of 5 drops simultaneous connections (the client then waits 1 s)
    request_queue_size = 128


def _make_handler(server: TestServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            split = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                body = self._read_chunked()
            else:
                body = self.rfile.read(length) if length else b""
            request = Request(
                method=self.command,
                path=split.path,
                query=urllib.parse.parse_qs(split.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            response = server.handle(request, self.path)
            try:
                self.send_response(response.status)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(response.body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def _read_chunked(self) -> bytes:
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    return _Handler

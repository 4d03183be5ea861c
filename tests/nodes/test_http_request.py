"""The `http_request` node, through the real executor, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import socket
import time
from typing import Any

import httpx
import msgspec
import pytest

from flowlite.errors import WorkflowInvalid
from flowlite.executor import Engine
from flowlite.model import workflow_from_dict
from flowlite.nodes.http_pagination import (
    MAX_RETRY_WAIT,
    ResponseTooLarge,
    read_limited,
    retry_delay,
    safe_url,
)
from flowlite.nodes.http_request import HttpRequest
from flowlite.testing import NodeResult, run_node, test_registry
from flowlite.validation import problems_of
from tests.httpserver import PNG, Request, Response, TestServer

HTTP = "http_request"


def problems(parameters: dict[str, Any]) -> list[str]:
    workflow = workflow_from_dict(
        {"name": "w", "nodes": [{"name": "N", "type": HTTP, "parameters": parameters}]}
    )
    return [str(p) for p in problems_of(workflow, test_registry())]


def received(server: TestServer, index: int = -1) -> Request:
    return server.requests[index]


class Credentials:
    """A credential source holding named credentials, as `flowlite serve` provides them."""

    def __init__(self, **credentials: dict[str, Any]) -> None:
        self.credentials = credentials

    async def __call__(self, reference: str, *, workflow_id: str | None) -> dict[str, Any]:
        return self.credentials[reference]


async def run_with_credential(
    parameters: dict[str, Any], credential: dict[str, Any], items: Any = None, **fields: Any
) -> NodeResult:
    engine = Engine(test_registry(), credentials=Credentials(my_cred=credential))
    return await run_node(
        HTTP, parameters, items, engine=engine, credentials={"auth": "my_cred"}, **fields
    )


def record_text(result: NodeResult) -> str:
    return msgspec.json.encode(result.record).decode()


# --- the catalog --------------------------------------------------------------------------------


def test_every_catalog_parameter_is_declared() -> None:
    names = {p["name"] for p in HttpRequest.describe()["parameters"]}
    assert names >= {
        "method",
        "url",
        "query",
        "headers",
        "body",
        "body_type",
        "content_type",
        "auth",
        "timeout",
        "response",
        "full_response",
        "never_error",
        "follow_redirects",
        "pagination",
        "batch",
    }
    pagination = next(p for p in HttpRequest.params if p.name == "pagination")
    assert {f.name for f in pagination.fields} == {
        "next_url",
        "page_param",
        "start_page",
        "stop_when",
        "max_pages",
    }


# --- methods, query, headers ---------------------------------------------------------------------


async def test_get_outputs_the_json_object(http_server: TestServer) -> None:
    result = await run_node(HTTP, {"url": http_server.url("/echo")}, [{}])
    assert result.status == "success"
    [out] = result.json()
    assert out["method"] == "GET"
    assert out["path"] == "/echo"
    assert out["headers"]["user-agent"].startswith("flowlite/")


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
async def test_methods(http_server: TestServer, method: str) -> None:
    result = await run_node(HTTP, {"method": method, "url": http_server.url("/echo")}, [{}])
    assert result.json()[0]["method"] == method
    assert received(http_server).method == method


async def test_head_outputs_an_empty_item(http_server: TestServer) -> None:
    result = await run_node(HTTP, {"method": "HEAD", "url": http_server.url("/echo")}, [{}])
    assert result.status == "success"
    assert result.json() == [{}]
    assert received(http_server).method == "HEAD"


async def test_method_from_an_expression_in_any_case(http_server: TestServer) -> None:
    result = await run_node(
        HTTP, {"method": "{{ json.verb }}", "url": http_server.url("/echo")}, [{"verb": "post"}]
    )
    assert result.json()[0]["method"] == "POST"


async def test_query_values_are_encoded_and_merged_with_the_url_query(
    http_server: TestServer,
) -> None:
    query = {
        "q": "a b&c",
        "n": 3,
        "flag": True,
        "tags": ["x", "y"],
        "obj": {"a": 1},
        "skipped": None,
        "from_item": "{{ json.id }}",
    }
    result = await run_node(
        HTTP, {"url": http_server.url("/echo?fixed=1&q=old"), "query": query}, [{"id": 7}]
    )
    assert result.status == "success"
    assert received(http_server).query == {
        "fixed": ["1"],
        "q": ["a b&c"],
        "n": ["3"],
        "flag": ["true"],
        "tags": ["x", "y"],
        "obj": ['{"a": 1}'],
        "from_item": ["7"],
    }


async def test_headers(http_server: TestServer) -> None:
    headers = {"X-Test": "yes", "X-Number": 5, "X-Item": "{{ json.name }}", "X-None": None}
    await run_node(HTTP, {"url": http_server.url("/echo"), "headers": headers}, [{"name": "ada"}])
    sent = received(http_server).headers
    assert sent["x-test"] == "yes"
    assert sent["x-number"] == "5"
    assert sent["x-item"] == "ada"
    assert "x-none" not in sent


# --- one request per item, or one in all ---------------------------------------------------------


async def test_static_parameters_send_one_request_for_all_items(http_server: TestServer) -> None:
    result = await run_node(HTTP, {"url": http_server.url("/echo")}, [{"a": 1}, {"a": 2}, {"a": 3}])
    assert len(http_server.requests) == 1
    assert len(result.json()) == 1


async def test_item_data_sends_one_request_per_item_in_order(http_server: TestServer) -> None:
    result = await run_node(
        HTTP,
        {"url": http_server.url("/echo"), "query": {"id": "{{ json.id }}"}},
        [{"id": n} for n in range(5)],
    )
    assert len(http_server.requests) == 5
    assert [out["query"]["id"] for out in result.json()] == [[str(n)] for n in range(5)]


async def test_empty_input_sends_nothing(http_server: TestServer) -> None:
    result = await run_node(HTTP, {"url": http_server.url("/echo")}, [])
    assert result.status == "success"
    assert result.json() == []
    assert http_server.requests == []


# --- bodies ---------------------------------------------------------------------------------------


async def test_json_body(http_server: TestServer) -> None:
    body = {"name": "{{ json.name }}", "tags": ["a"], "n": 1.5, "ok": True, "none": None}
    result = await run_node(
        HTTP, {"method": "POST", "url": http_server.url("/echo"), "body": body}, [{"name": "ada"}]
    )
    out = result.json()[0]
    assert out["headers"]["content-type"] == "application/json"
    assert out["json"] == {"name": "ada", "tags": ["a"], "n": 1.5, "ok": True, "none": None}


async def test_json_body_written_as_text_is_sent_as_written(http_server: TestServer) -> None:
    text = '{"a": [1, 2]}'
    result = await run_node(
        HTTP, {"method": "POST", "url": http_server.url("/echo"), "body": text}, [{}]
    )
    assert result.json()[0]["body"] == text
    assert result.json()[0]["json"] == {"a": [1, 2]}


async def test_json_body_text_that_is_not_json_fails(http_server: TestServer) -> None:
    result = await run_node(
        HTTP, {"method": "POST", "url": http_server.url("/echo"), "body": "{oops"}, [{}]
    )
    assert result.status == "error"
    assert result.error is not None
    assert "parameter 'body' is text that is not valid JSON" in result.error.message
    assert http_server.requests == []


async def test_form_body(http_server: TestServer) -> None:
    body = {"name": "Ada L", "n": 2, "many": ["a", "b"], "obj": {"k": "v"}, "yes": True}
    result = await run_node(
        HTTP,
        {"method": "POST", "url": http_server.url("/echo"), "body": body, "body_type": "form"},
        [{}],
    )
    out = result.json()[0]
    assert out["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert out["form"] == {
        "name": ["Ada L"],
        "n": ["2"],
        "many": ["a", "b"],
        "obj": ['{"k": "v"}'],
        "yes": ["true"],
    }


async def test_multipart_body_with_fields_and_a_file(http_server: TestServer) -> None:
    png = base64.b64encode(PNG).decode()
    item = {
        "json": {"who": "ada"},
        "binary": {
            "photo": {"mime_type": "image/png", "file_name": "dot.png", "size": 68, "data": png}
        },
    }
    body = {"who": "{{ json.who }}", "n": 1, "many": ["a", "b"], "file": {"binary": "photo"}}
    result = await run_node(
        HTTP,
        {"method": "POST", "url": http_server.url("/echo"), "body": body, "body_type": "multipart"},
        [item],
    )
    out = result.json()[0]
    assert out["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    fields = [(p["name"], p["text"]) for p in out["parts"] if p["filename"] is None]
    assert fields == [("who", "ada"), ("n", "1"), ("many", "a"), ("many", "b")]
    [file] = [p for p in out["parts"] if p["filename"] is not None]
    assert file["name"] == "file"
    assert file["filename"] == "dot.png"
    assert file["content_type"] == "image/png"
    assert bytes.fromhex(file["bytes_hex"]) == PNG


async def test_multipart_with_fields_only_is_still_multipart(http_server: TestServer) -> None:
    result = await run_node(
        HTTP,
        {
            "method": "POST",
            "url": http_server.url("/echo"),
            "body": {"a": "1"},
            "body_type": "multipart",
        },
        [{}],
    )
    out = result.json()[0]
    assert out["headers"]["content-type"].startswith("multipart/form-data")
    assert [(p["name"], p["text"]) for p in out["parts"]] == [("a", "1")]


async def test_multipart_missing_binary_field_fails_the_item(http_server: TestServer) -> None:
    result = await run_node(
        HTTP,
        {
            "method": "POST",
            "url": http_server.url("/echo"),
            "body": {"file": {"binary": "photo"}},
            "body_type": "multipart",
        },
        [{"n": 1}],
        on_error="continue",
    )
    assert result.json() == [
        {"n": 1, "error": "parameter 'body': the item has no binary field 'photo'"}
    ]
    assert http_server.requests == []


async def test_raw_body_with_content_type(http_server: TestServer) -> None:
    result = await run_node(
        HTTP,
        {
            "method": "PUT",
            "url": http_server.url("/echo"),
            "body": "<a>{{ json.v }}</a>",
            "body_type": "raw",
            "content_type": "application/xml",
        },
        [{"v": "x"}],
    )
    sent = received(http_server)
    assert sent.body == b"<a>x</a>"
    assert sent.headers["content-type"] == "application/xml"
    assert result.json()[0]["body"] == "<a>x</a>"


async def test_raw_body_defaults_to_text_plain(http_server: TestServer) -> None:
    await run_node(
        HTTP,
        {"method": "POST", "url": http_server.url("/echo"), "body": "hi", "body_type": "raw"},
        [{}],
    )
    assert received(http_server).headers["content-type"] == "text/plain"


async def test_raw_body_from_the_items_binary(http_server: TestServer) -> None:
    item = {
        "json": {},
        "binary": {
            "data": {
                "mime_type": "image/png",
                "file_name": "a.png",
                "size": 68,
                "data": base64.b64encode(PNG).decode(),
            }
        },
    }
    await run_node(
        HTTP,
        {
            "method": "POST",
            "url": http_server.url("/echo"),
            "body": {"binary": "data"},
            "body_type": "raw",
        },
        [item],
    )
    sent = received(http_server)
    assert sent.body == PNG
    assert sent.headers["content-type"] == "image/png"


async def test_header_content_type_wins_over_the_default(http_server: TestServer) -> None:
    await run_node(
        HTTP,
        {
            "method": "POST",
            "url": http_server.url("/echo"),
            "body": {"a": 1},
            "headers": {"content-type": "application/vnd.api+json"},
        },
        [{}],
    )
    sent = received(http_server)
    assert sent.headers["content-type"] == "application/vnd.api+json"
    assert sent.body == b'{"a":1}'


# --- responses ------------------------------------------------------------------------------------


async def test_json_list_becomes_one_item_per_element(http_server: TestServer) -> None:
    http_server.route("/list", lambda r: Response.json([{"id": 1}, {"id": 2}, 3, "x", None]))
    result = await run_node(HTTP, {"url": http_server.url("/list")}, [{}])
    assert result.json() == [{"id": 1}, {"id": 2}, {"data": 3}, {"data": "x"}, {"data": None}]


async def test_json_scalar_and_empty_list(http_server: TestServer) -> None:
    http_server.route("/scalar", lambda r: Response.json(42))
    http_server.route("/empty", lambda r: Response.json([]))
    assert (await run_node(HTTP, {"url": http_server.url("/scalar")}, [{}])).json() == [
        {"data": 42}
    ]
    assert (await run_node(HTTP, {"url": http_server.url("/empty")}, [{}])).json() == []


async def test_no_content_is_an_empty_item(http_server: TestServer) -> None:
    http_server.route("/none", lambda r: Response(204))
    result = await run_node(HTTP, {"url": http_server.url("/none")}, [{}])
    assert result.json() == [{}]


async def test_text_response(http_server: TestServer) -> None:
    result = await run_node(HTTP, {"url": http_server.url("/text")}, [{}])
    assert result.json() == [{"data": "héllo wörld"}]


async def test_text_response_in_its_declared_charset(http_server: TestServer) -> None:
    result = await run_node(HTTP, {"url": http_server.url("/text?charset=latin-1")}, [{}])
    assert result.json() == [{"data": "héllo wörld"}]


async def test_auto_json_that_does_not_parse_is_text(http_server: TestServer) -> None:
    http_server.route(
        "/broken", lambda r: Response(200, b"{not json", {"Content-Type": "application/json"})
    )
    result = await run_node(HTTP, {"url": http_server.url("/broken")}, [{}])
    assert result.json() == [{"data": "{not json"}]


async def test_binary_response(http_server: TestServer) -> None:
    result = await run_node(HTTP, {"url": http_server.url("/png?name=dot.png")}, [{}])
    [item] = result.outputs["main"]
    assert item["json"] == {}
    data = item["binary"]["data"]
    assert data["mime_type"] == "image/png"
    assert data["file_name"] == "dot.png"
    assert data["size"] == len(PNG)
    assert base64.b64decode(data["data"]) == PNG


async def test_binary_file_name_from_the_url(http_server: TestServer) -> None:
    result = await run_node(HTTP, {"url": http_server.url("/png")}, [{}])
    assert result.outputs["main"][0]["binary"]["data"]["file_name"] == "png.png"


async def test_response_text_forces_text(http_server: TestServer) -> None:
    http_server.route("/obj", lambda r: Response.json({"a": 1}))
    result = await run_node(HTTP, {"url": http_server.url("/obj"), "response": "text"}, [{}])
    assert result.json() == [{"data": '{"a": 1}'}]


async def test_response_json_forces_json(http_server: TestServer) -> None:
    http_server.route("/jtext", lambda r: Response.text('{"a": 1}'))
    result = await run_node(HTTP, {"url": http_server.url("/jtext"), "response": "json"}, [{}])
    assert result.json() == [{"a": 1}]


async def test_response_json_that_is_not_json_fails(http_server: TestServer) -> None:
    result = await run_node(HTTP, {"url": http_server.url("/text"), "response": "json"}, [{}])
    assert result.status == "error"
    assert result.error is not None
    assert "the response is not valid JSON" in result.error.message
    assert "héllo wörld" in result.error.message


async def test_response_binary_forces_binary(http_server: TestServer) -> None:
    http_server.route("/obj", lambda r: Response.json({"a": 1}))
    result = await run_node(HTTP, {"url": http_server.url("/obj"), "response": "binary"}, [{}])
    [item] = result.outputs["main"]
    assert base64.b64decode(item["binary"]["data"]["data"]) == b'{"a": 1}'
    assert item["binary"]["data"]["mime_type"] == "application/json"


async def test_full_response(http_server: TestServer) -> None:
    http_server.route(
        "/list", lambda r: Response.json([1, 2], 201, {"X-Reply": "yes", "Set-Cookie": "a=1"})
    )
    result = await run_node(HTTP, {"url": http_server.url("/list"), "full_response": True}, [{}])
    [out] = result.json()
    assert out["status"] == 201
    assert out["body"] == [1, 2]
    assert out["headers"]["x-reply"] == "yes"
    assert out["headers"]["content-type"] == "application/json"


async def test_full_response_with_a_binary_body(http_server: TestServer) -> None:
    result = await run_node(HTTP, {"url": http_server.url("/png"), "full_response": True}, [{}])
    [item] = result.outputs["main"]
    assert item["json"]["status"] == 200
    assert item["json"]["body"] is None
    assert base64.b64decode(item["binary"]["data"]["data"]) == PNG


# --- errors ---------------------------------------------------------------------------------------


async def test_error_status_fails_with_item_method_url_status_and_excerpt(
    http_server: TestServer,
) -> None:
    url = http_server.url("/status?code=500&api_key=s3cret")
    result = await run_node(
        HTTP, {"method": "POST", "url": "{{ json.url }}"}, [{"url": url}], on_error="stop"
    )
    assert result.status == "error"
    error = result.error
    assert error is not None
    assert error.item_index == 0
    assert error.node == "Node"
    assert error.message == (
        f"item 0: POST {http_server.url('/status')}: status 500 Internal Server Error: "
        '{"error": "status 500"}'
    )
    assert "s3cret" not in msgspec.json.encode(result.run).decode()


async def test_error_message_strips_user_info(http_server: TestServer) -> None:
    url = http_server.url("/status?code=404").replace("http://", "http://bob:pw@")
    result = await run_node(HTTP, {"url": url}, [{}])
    assert result.error is not None
    assert "status 404 Not Found" in result.error.message
    assert "bob" not in result.error.message
    assert ":pw@" not in record_text(result)


async def test_error_excerpt_is_short_and_binary_is_described(http_server: TestServer) -> None:
    http_server.route("/long", lambda r: Response.text("x " * 1000, 400))
    http_server.route("/img", lambda r: Response(422, PNG, {"Content-Type": "image/png"}))
    long = await run_node(HTTP, {"url": http_server.url("/long")}, [{}])
    assert long.error is not None
    assert long.error.message.endswith("x x x...")
    assert len(long.error.message) < 300
    image = await run_node(HTTP, {"url": http_server.url("/img")}, [{}])
    assert image.error is not None
    assert image.error.message.endswith("status 422 Unprocessable Entity: (68 bytes of image/png)")


async def test_never_error_outputs_the_error_response(http_server: TestServer) -> None:
    url = http_server.url("/status?code=404")
    plain = await run_node(HTTP, {"url": url, "never_error": True}, [{}])
    assert plain.status == "success"
    assert plain.json() == [{"error": "status 404"}]
    full = await run_node(HTTP, {"url": url, "never_error": True, "full_response": True}, [{}])
    assert full.json()[0]["status"] == 404
    assert full.json()[0]["body"] == {"error": "status 404"}


async def test_on_error_continue_is_per_item(http_server: TestServer) -> None:
    items = [{"path": "/echo"}, {"path": "/status?code=503"}, {"path": "/echo"}]
    http_server.route("/status", lambda r: Response.json({"error": "down"}, 500))
    result = await run_node(
        HTTP, {"url": http_server.url("") + "{{ json.path }}"}, items, on_error="continue"
    )
    assert result.status == "success"
    out = result.json()
    assert [o.get("path") for o in out] == ["/echo", "/status?code=503", "/echo"]
    assert out[0]["method"] == "GET"
    assert out[1]["error"] == (
        f"item 1: GET {http_server.url('/status')}: status 500 Internal Server Error: "
        '{"error": "down"}'
    )
    assert "error" not in out[2]


async def test_one_shared_request_that_fails_fails_every_item(http_server: TestServer) -> None:
    result = await run_node(
        HTTP,
        {"url": http_server.url("/status?code=500")},
        [{"a": 1}, {"a": 2}],
        on_error="continue",
    )
    message = f"GET {http_server.url('/status')}: status 500 Internal Server Error: " + (
        '{"error": "status 500"}'
    )
    assert result.json() == [{"a": 1, "error": message}, {"a": 2, "error": message}]
    assert len(http_server.requests) == 1


async def test_on_error_output_routes_only_the_failed_items(http_server: TestServer) -> None:
    items = [{"code": 200}, {"code": 400}]
    result = await run_node(
        HTTP,
        {"url": http_server.url("/status?code={{ json.code }}")},
        items,
        on_error="error_output",
    )
    assert result.json("main") == [{"error": "status 200"}]
    [failed] = result.json("error")
    assert failed["code"] == 400
    assert "item 1: GET" in failed["error"]
    assert "status 400 Bad Request" in failed["error"]


async def test_timeout(http_server: TestServer) -> None:
    started = time.monotonic()
    result = await run_node(HTTP, {"url": http_server.url("/slow?seconds=3"), "timeout": 0.2}, [{}])
    assert time.monotonic() - started < 2.5
    assert result.error is not None
    assert result.error.message == (
        f"GET {http_server.url('/slow')}: request timed out after 0.2 s"
    )


async def test_bad_url_fails_the_item(http_server: TestServer) -> None:
    result = await run_node(
        HTTP,
        {"url": "{{ json.url }}"},
        [{"url": "not a url"}, {"url": "ftp://x/y"}],
        on_error="continue",
    )
    assert [o["error"] for o in result.json()] == [
        "parameter 'url' must be an absolute http:// or https:// URL, got 'not a url'",
        "parameter 'url' must be an absolute http:// or https:// URL, got 'ftp://x/y'",
    ]


async def test_empty_url_from_an_expression(http_server: TestServer) -> None:
    result = await run_node(HTTP, {"url": "{{ json.url }}"}, [{}], on_error="continue")
    assert result.json() == [{"error": "parameter 'url' is empty"}]


async def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = await run_node(HTTP, {"url": f"http://127.0.0.1:{port}/x?token=abc"}, [{}])
    assert result.error is not None
    assert result.error.message.startswith(f"GET http://127.0.0.1:{port}/x: request failed: ")
    assert "token=abc" not in result.error.message


async def test_follow_redirects(http_server: TestServer) -> None:
    result = await run_node(HTTP, {"url": http_server.url("/redirect?to=/echo%3Fa%3D1")}, [{}])
    assert result.json()[0]["path"] == "/echo"
    assert result.json()[0]["query"] == {"a": ["1"]}
    assert http_server.paths() == ["/redirect", "/echo"]


async def test_follow_redirects_false_outputs_the_redirect(http_server: TestServer) -> None:
    result = await run_node(
        HTTP,
        {
            "url": http_server.url("/redirect?to=/echo&code=301"),
            "follow_redirects": False,
            "full_response": True,
        },
        [{}],
    )
    [out] = result.json()
    assert out["status"] == 301
    assert out["headers"]["location"] == "/echo"
    assert http_server.paths() == ["/redirect"]


async def test_redirect_loop_fails(http_server: TestServer) -> None:
    http_server.route("/loop", lambda r: Response(302, b"", {"Location": "/loop"}))
    result = await run_node(HTTP, {"url": http_server.url("/loop")}, [{}])
    assert result.error is not None
    assert result.error.message.endswith(": too many redirects")


# --- retries --------------------------------------------------------------------------------------


async def test_429_with_retry_after_is_tried_again(http_server: TestServer) -> None:
    result = await run_node(
        HTTP, {"url": http_server.url("/retry?key=a&status=429&times=1&after=0")}, [{}]
    )
    assert result.json() == [{"ok": True, "attempt": 2}]
    assert len(http_server.requests) == 2
    assert result.run is not None
    assert any("status 429, trying again in 0 s" in line for line in result.run.logs)


async def test_503_waits_as_retry_after_says(http_server: TestServer) -> None:
    started = time.monotonic()
    result = await run_node(
        HTTP, {"url": http_server.url("/retry?key=b&status=503&times=1&after=1")}, [{}]
    )
    assert time.monotonic() - started >= 0.9
    assert result.json() == [{"ok": True, "attempt": 2}]


async def test_retry_after_as_an_http_date(http_server: TestServer) -> None:
    result = await run_node(
        HTTP, {"url": http_server.url("/retry?key=c&status=429&times=2&after=0&date=1")}, [{}]
    )
    assert result.json() == [{"ok": True, "attempt": 3}]


async def test_gives_up_after_three_tries(http_server: TestServer) -> None:
    result = await run_node(
        HTTP, {"url": http_server.url("/retry?key=d&status=429&times=9&after=0")}, [{}]
    )
    assert len(http_server.requests) == 3
    assert result.error is not None
    assert "status 429 Too Many Requests" in result.error.message


async def test_other_statuses_are_not_tried_again(http_server: TestServer) -> None:
    await run_node(HTTP, {"url": http_server.url("/retry?key=e&status=500&times=1")}, [{}])
    assert len(http_server.requests) == 1


def test_retry_delay() -> None:
    now = dt.datetime(2026, 11, 21, 10, 0, 0, tzinfo=dt.UTC).timestamp()
    assert retry_delay("3", 1, now) == 3
    assert retry_delay(" 0 ", 1, now) == 0
    assert retry_delay("Sat, 21 Nov 2026 10:00:05 GMT", 1, now) == 5
    assert retry_delay(email.utils.formatdate(now - 30, usegmt=True), 1, now) == 0
    assert retry_delay(None, 1, now) == 1
    assert retry_delay(None, 2, now) == 2
    assert retry_delay("soon", 1, now) == 1
    assert retry_delay("3600", 1, now) == MAX_RETRY_WAIT
    assert retry_delay("Sat, 21 Nov 2026 12:00:00 GMT", 1, now) == MAX_RETRY_WAIT


# --- pagination -----------------------------------------------------------------------------------


async def test_pagination_by_relative_next_url(http_server: TestServer) -> None:
    result = await run_node(
        HTTP,
        {
            "url": http_server.url("/cursor?page=1&last=3"),
            "pagination": {"next_url": "{{ json.body.next }}"},
        },
        [{}],
    )
    assert [out["data"][0]["id"] for out in result.json()] == [11, 21, 31]
    assert len(http_server.requests) == 3
    assert [r.query["page"] for r in http_server.requests] == [["1"], ["2"], ["3"]]


async def test_pagination_by_absolute_next_url_with_full_response(http_server: TestServer) -> None:
    result = await run_node(
        HTTP,
        {
            "url": http_server.url("/cursor?page=1&last=2&absolute=1"),
            "full_response": True,
            "pagination": {"next_url": "{{ json.body.next if json.status == 200 else null }}"},
        },
        [{}],
    )
    assert [(out["status"], out["body"]["data"][1]["id"]) for out in result.json()] == [
        (200, 12),
        (200, 22),
    ]


async def test_pagination_by_page_param_stops_at_an_empty_page(http_server: TestServer) -> None:
    result = await run_node(
        HTTP,
        {
            "url": http_server.url("/pages"),
            "query": {"total": 5, "size": 2},
            "pagination": {"page_param": "page"},
        },
        [{}],
    )
    assert [out["id"] for out in result.json()] == [1, 2, 3, 4, 5]
    assert [r.query["page"] for r in http_server.requests] == [["1"], ["2"], ["3"], ["4"]]
    assert all(r.query["total"] == ["5"] for r in http_server.requests)


async def test_pagination_page_param_from_start_page_with_stop_when(
    http_server: TestServer,
) -> None:
    result = await run_node(
        HTTP,
        {
            "url": http_server.url("/pages?total=9&size=2&param=p"),
            "pagination": {
                "page_param": "p",
                "start_page": 2,
                "stop_when": "{{ json.page == 2 or len(json.body) < 2 }}",
            },
        },
        [{}],
    )
    assert [out["id"] for out in result.json()] == [3, 4, 5, 6]
    assert [r.query["p"] for r in http_server.requests] == [["2"], ["3"]]


async def test_pagination_stop_when_sees_status_and_headers(http_server: TestServer) -> None:
    calls = {"n": 0}

    def handler(request: Request) -> Response:
        calls["n"] += 1
        last = "yes" if calls["n"] == 2 else "no"
        return Response.json([{"n": calls["n"]}], headers={"X-Last": last})

    http_server.route("/h", handler)
    result = await run_node(
        HTTP,
        {
            "url": http_server.url("/h"),
            "pagination": {
                "page_param": "page",
                "stop_when": "{{ json.status != 200 or json.headers['x-last'] == 'yes' }}",
            },
        },
        [{}],
    )
    assert result.json() == [{"n": 1}, {"n": 2}]


async def test_pagination_max_pages(http_server: TestServer) -> None:
    result = await run_node(
        HTTP,
        {
            "url": http_server.url("/cursor?page=1&last=50"),
            "pagination": {"next_url": "{{ json.body.next }}", "max_pages": 2},
        },
        [{}],
    )
    assert len(result.json()) == 2
    assert len(http_server.requests) == 2
    assert result.run is not None
    assert result.run.logs == [f"GET {http_server.url('/cursor')}: stopped at max_pages (2 pages)"]


async def test_pagination_ending_exactly_at_max_pages_logs_nothing(
    http_server: TestServer,
) -> None:
    result = await run_node(
        HTTP,
        {
            "url": http_server.url("/cursor?page=1&last=2"),
            "pagination": {"next_url": "{{ json.body.next }}", "max_pages": 2},
        },
        [{}],
    )
    assert len(result.json()) == 2
    assert result.run is not None
    assert result.run.logs == []


async def test_pagination_next_url_with_stop_when(http_server: TestServer) -> None:
    result = await run_node(
        HTTP,
        {
            "url": http_server.url("/cursor?page=1&last=9"),
            "pagination": {"next_url": "{{ json.body.next }}", "stop_when": "{{ json.page >= 2 }}"},
        },
        [{}],
    )
    assert [out["data"][0]["id"] for out in result.json()] == [11, 21]
    assert len(http_server.requests) == 2


async def test_pagination_per_item(http_server: TestServer) -> None:
    result = await run_node(
        HTTP,
        {
            "url": http_server.url("/cursor?page=1&last={{ json.last }}"),
            "pagination": {"next_url": "{{ json.body.next }}"},
        },
        [{"last": 1}, {"last": 2}],
    )
    assert [out["data"][0]["id"] for out in result.json()] == [11, 11, 21]


async def test_pagination_expression_error_fails_the_item(http_server: TestServer) -> None:
    result = await run_node(
        HTTP,
        {
            "url": http_server.url("/cursor?page=1&last=3"),
            "pagination": {"next_url": "{{ json.body.missing.deeper }}"},
        },
        [{"n": 1}],
        on_error="continue",
    )
    [out] = result.json()
    assert out["n"] == 1
    assert out["error"].startswith("parameter 'pagination.next_url': ")


async def test_pagination_next_url_must_be_text(http_server: TestServer) -> None:
    result = await run_node(
        HTTP,
        {"url": http_server.url("/cursor"), "pagination": {"next_url": "{{ json.page }}"}},
        [{}],
    )
    assert result.error is not None
    assert result.error.message == "parameter 'pagination.next_url' must give a URL, got int"


async def test_pagination_stops_when_the_next_url_repeats(http_server: TestServer) -> None:
    http_server.route("/same", lambda r: Response.json({"next": "/same"}))
    result = await run_node(
        HTTP,
        {"url": http_server.url("/same"), "pagination": {"next_url": "{{ json.body.next }}"}},
        [{}],
    )
    assert len(http_server.requests) == 1
    assert result.json() == [{"next": "/same"}]


def test_pagination_problems() -> None:
    assert problems({"url": "http://x", "pagination": {"page_param": "p", "next_url": "{{ 1 }}"}})
    assert any(
        "give exactly one of `next_url` or `page_param`" in p
        for p in problems({"url": "http://x", "pagination": {"max_pages": 3}})
    )
    assert any(
        "pagination.next_url: must be an expression over the last response" in p
        for p in problems({"url": "http://x", "pagination": {"next_url": "json.body.next"}})
    )
    assert any(
        "pagination.max_pages" in p
        for p in problems({"url": "http://x", "pagination": {"page_param": "p", "max_pages": 0}})
    )
    assert any(
        "pagination.unknown" in p
        for p in problems({"url": "http://x", "pagination": {"page_param": "p", "unknown": 1}})
    )
    assert problems({"url": "http://x", "pagination": {"next_url": "{{ json.body.next }}"}}) == []


# --- batch ----------------------------------------------------------------------------------------


async def test_batch_size_limits_requests_in_flight(http_server: TestServer) -> None:
    result = await run_node(
        HTTP,
        {"url": http_server.url("/concurrent?delay=0.2&n={{ index }}"), "batch": {"size": 2}},
        [{} for _ in range(5)],
    )
    assert [out["n"] for out in result.json()] == ["0", "1", "2", "3", "4"]
    assert http_server.max_in_flight == 2


async def test_batch_interval_separates_the_groups(http_server: TestServer) -> None:
    result = await run_node(
        HTTP,
        {
            "url": http_server.url("/concurrent?delay=0.05&n={{ index }}"),
            "batch": {"size": 2, "interval": 50},
        },
        [{} for _ in range(5)],
    )
    assert len(result.json()) == 5
    position = {event: i for i, event in enumerate(http_server.events)}

    def at(kind: str, n: int) -> int:
        return position[(kind, f"/concurrent?delay=0.05&n={n}")]

    # every request of a group starts after each request of the group before has been answered
    for group, following in (((0, 1), (2, 3)), ((2, 3), (4,))):
        assert min(at("start", n) for n in following) > max(at("end", n) for n in group)


async def test_default_concurrency_is_ten(http_server: TestServer) -> None:
    await run_node(
        HTTP,
        {"url": http_server.url("/concurrent?delay=0.3&n={{ index }}")},
        [{} for _ in range(14)],
    )
    assert http_server.max_in_flight == 10


def test_batch_problems() -> None:
    assert any("batch.size" in p for p in problems({"url": "http://x", "batch": {"size": 0}}))
    assert any(
        "batch.interval" in p for p in problems({"url": "http://x", "batch": {"interval": -1}})
    )


# --- credentials ----------------------------------------------------------------------------------


def expect_header(name: str, value: str) -> Any:
    def handler(request: Request) -> Response:
        if request.headers.get(name.lower()) != value:
            return Response.json({"error": f"bad credentials, expected {value}"}, 401)
        return Response.json({"authenticated": True})

    return handler


@pytest.mark.parametrize(
    ("auth", "credential", "header", "value", "secret"),
    [
        (
            "basic",
            {"user": "ada", "password": "pa55-word"},
            "Authorization",
            "Basic " + base64.b64encode(b"ada:pa55-word").decode(),
            "pa55-word",
        ),
        ("bearer", {"token": "tok-123456"}, "Authorization", "Bearer tok-123456", "tok-123456"),
        (
            "header",
            {"name": "X-Api-Key", "value": "key-987654"},
            "X-Api-Key",
            "key-987654",
            "key-987654",
        ),
    ],
)
async def test_header_credentials(
    http_server: TestServer,
    auth: str,
    credential: dict[str, Any],
    header: str,
    value: str,
    secret: str,
) -> None:
    http_server.route("/secure", expect_header(header, value))
    result = await run_with_credential(
        {"url": http_server.url("/secure"), "auth": auth}, credential, [{}]
    )
    assert result.json() == [{"authenticated": True}]
    assert secret not in record_text(result)


async def test_query_credential(http_server: TestServer) -> None:
    def handler(request: Request) -> Response:
        return Response.json({"authenticated": request.arg("api_key") == "q-secret-1"})

    http_server.route("/secure", handler)
    result = await run_with_credential(
        {"url": http_server.url("/secure?x=1"), "auth": "query"},
        {"name": "api_key", "value": "q-secret-1"},
        [{}],
    )
    assert result.json() == [{"authenticated": True}]
    assert received(http_server).query == {"x": ["1"], "api_key": ["q-secret-1"]}
    assert "q-secret-1" not in record_text(result)


async def test_secrets_stay_out_of_failures(http_server: TestServer) -> None:
    http_server.route("/secure", expect_header("Authorization", "Bearer right"))
    result = await run_with_credential(
        {"url": http_server.url("/secure"), "auth": "bearer"},
        {"token": "wrong-token-42"},
        [{}],
    )
    assert result.status == "error"
    assert result.error is not None
    assert "status 401 Unauthorized" in result.error.message
    assert "wrong-token-42" not in record_text(result)

    http_server.route("/echoing", lambda r: Response.text(f"seen {r.arg('k')}", 403))
    failed = await run_with_credential(
        {"url": http_server.url("/echoing"), "auth": "query"},
        {"name": "k", "value": "query-secret-77"},
        [{}],
        on_error="continue",
    )
    [out] = failed.json()
    assert out["error"].endswith("status 403 Forbidden: seen ***")
    assert "query-secret-77" not in record_text(failed)


async def test_secrets_stay_out_of_timeouts(http_server: TestServer) -> None:
    result = await run_with_credential(
        {"url": http_server.url("/slow?seconds=3"), "auth": "query", "timeout": 0.2},
        {"name": "k", "value": "slow-secret-5"},
        [{}],
    )
    assert result.error is not None
    assert "timed out" in result.error.message
    assert "slow-secret-5" not in record_text(result)


async def test_credential_with_missing_fields(http_server: TestServer) -> None:
    result = await run_with_credential(
        {"url": http_server.url("/echo"), "auth": "basic"}, {"password": "only-pw"}, [{}]
    )
    assert result.error is not None
    assert result.error.message == "the credential for auth 'basic' needs the fields user, password"
    assert "only-pw" not in record_text(result)
    assert http_server.requests == []


async def test_auth_without_a_credential(http_server: TestServer) -> None:
    result = await run_node(HTTP, {"url": http_server.url("/echo"), "auth": "bearer"}, [{}])
    assert result.error is not None
    assert "no credential is assigned to slot 'auth'" in result.error.message


async def test_credentials_do_not_follow_next_links_to_other_hosts(
    http_server: TestServer,
) -> None:
    other = http_server.url("/echo").replace("127.0.0.1", "localhost")
    http_server.route("/first", lambda r: Response.json({"next": other}))
    result = await run_with_credential(
        {
            "url": http_server.url("/first"),
            "auth": "bearer",
            "pagination": {"next_url": "{{ json.body.next }}"},
        },
        {"token": "t-origin-1"},
        [{}],
    )
    assert result.status == "success"
    first, second = http_server.requests
    assert first.headers["authorization"] == "Bearer t-origin-1"
    assert "authorization" not in second.headers


# --- validation -----------------------------------------------------------------------------------


async def test_missing_url_is_a_validation_error() -> None:
    with pytest.raises(WorkflowInvalid) as caught:
        await run_node(HTTP, {"method": "GET"}, [{}])
    assert "node 'Node'.parameters.url: is required" in str(caught.value)


def test_bad_parameter_types() -> None:
    found = problems(
        {
            "url": 5,
            "method": "FETCH",
            "query": ["a"],
            "headers": "x",
            "body_type": "xml",
            "timeout": "long",
            "response": "html",
            "full_response": "yes",
            "follow_redirects": 1,
            "auth": "oauth",
        }
    )
    text = "\n".join(found)
    for name in (
        "url",
        "method",
        "query",
        "headers",
        "body_type",
        "timeout",
        "response",
        "full_response",
        "follow_redirects",
        "auth",
    ):
        assert f"parameters.{name}:" in text, name


def test_cross_parameter_checks() -> None:
    assert any(
        "timeout: must be more than 0 seconds" in p
        for p in problems({"url": "http://x", "timeout": 0})
    )
    assert any(
        "body: must be an object for body_type 'form'" in p
        for p in problems({"url": "http://x", "body": [1], "body_type": "form"})
    )


async def test_parameter_evaluated_to_a_wrong_type_fails_the_item(http_server: TestServer) -> None:
    result = await run_node(
        HTTP,
        {"url": http_server.url("/echo"), "query": "{{ json.q }}", "timeout": "{{ json.t }}"},
        [{"q": [1], "t": 1}, {"q": {}, "t": "x"}, {"q": {}, "t": 1}],
        on_error="continue",
    )
    out = result.json()
    assert out[0]["error"] == "parameter 'query' must be an object, got list"
    assert out[1]["error"] == "parameter 'timeout' must be a number, got text"
    assert out[2]["method"] == "GET"


# --- the response size limit ----------------------------------------------------------------------


async def test_read_limited(http_server: TestServer) -> None:
    async with httpx.AsyncClient() as client:
        async with client.stream("GET", http_server.url("/png")) as response:
            with pytest.raises(ResponseTooLarge, match="larger than"):
                await read_limited(response, 10)
        async with client.stream("GET", http_server.url("/png")) as response:
            assert await read_limited(response, len(PNG)) == PNG


def test_safe_url() -> None:
    assert safe_url("https://u:p@api.x.com/v1/a?key=1#frag") == "https://api.x.com/v1/a"
    assert safe_url("http://api.x.com?token=2") == "http://api.x.com"
    assert safe_url("not a url?x=1") == "not a url"

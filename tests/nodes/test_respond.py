"""The respond_to_webhook node: what it answers (record.response, and the responder)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from flowlite.errors import WorkflowInvalid
from flowlite.executor import Engine
from flowlite.model import workflow_from_dict
from flowlite.record import Mode
from flowlite.sdk import WebhookResponse
from flowlite.testing import NodeResult, run_node, test_registry

ITEMS = [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Bob"}]
PNG = b"\x89PNG\r\n\x1a\nfake"


async def respond(parameters: dict[str, Any], items: Any = None, **fields: Any) -> NodeResult:
    result = await run_node(
        "respond_to_webhook", parameters, ITEMS if items is None else items, **fields
    )
    return result


async def test_first_item_is_the_default() -> None:
    result = await respond({})
    assert result.status == "success"
    assert result.record.response == {
        "status": 200,
        "headers": {},
        "body": {"id": 1, "name": "Ada"},
    }
    assert result.json() == ITEMS  # items pass on


async def test_all_items() -> None:
    result = await respond({"respond_with": "all_items", "status": 201})
    assert result.record.response == {"status": 201, "headers": {}, "body": ITEMS}


async def test_json_body_with_expressions_sees_the_first_item() -> None:
    result = await respond(
        {
            "respond_with": "json",
            "body": {"greeting": "hi {{ json.name }}", "id": "{{ json.id }}", "count": 2},
            "headers": {"X-Id": "{{ json.id }}", "X-Static": "yes"},
        }
    )
    assert result.record.response == {
        "status": 200,
        "headers": {"X-Id": "1", "X-Static": "yes"},
        "body": {"greeting": "hi Ada", "id": 1, "count": 2},
    }


async def test_json_text_body_is_a_json_string() -> None:
    result = await respond({"respond_with": "json", "body": "plain"})
    assert result.record.response is not None and result.record.response["body"] == "plain"
    parsed = await respond({"respond_with": "json", "body": "{{ json_loads('{\"a\": 1}') }}"})
    assert parsed.record.response is not None and parsed.record.response["body"] == {"a": 1}


async def test_text() -> None:
    result = await respond({"respond_with": "text", "body": "Hello {{ json.name }}!"})
    assert result.record.response == {"status": 200, "headers": {}, "body": "Hello Ada!"}
    as_json = await respond({"respond_with": "text", "body": {"a": [1]}})
    assert as_json.record.response is not None
    assert as_json.record.response["body"] == '{"a": [1]}'


async def test_no_data() -> None:
    result = await respond({"respond_with": "no_data", "status": 204})
    assert result.record.response == {"status": 204, "headers": {}, "body": ""}


async def test_redirect_defaults_to_307() -> None:
    result = await respond(
        {"respond_with": "redirect", "location": "https://x.test/u/{{ json.id }}"}
    )
    assert result.record.response == {
        "status": 307,
        "headers": {"Location": "https://x.test/u/1"},
        "body": "",
    }
    moved = await respond({"respond_with": "redirect", "location": "/new", "status": 301})
    assert moved.record.response is not None and moved.record.response["status"] == 301


async def test_binary_and_the_responder_get_bytes_and_mime_type() -> None:
    sent: list[WebhookResponse] = []
    binary = {
        "image": {
            "mime_type": "image/png",
            "file_name": "a.png",
            "size": len(PNG),
            "data": base64.b64encode(PNG).decode(),
        }
    }
    workflow = workflow_from_dict(
        {
            "name": "hook",
            "nodes": [
                {
                    "name": "Reply",
                    "type": "respond_to_webhook",
                    "parameters": {"respond_with": "binary", "binary_field": "image"},
                }
            ],
        }
    )
    engine = Engine(test_registry())
    execution = engine.prepare(
        workflow,
        mode=Mode.WEBHOOK,
        items=[{"json": {}, "binary": binary}],
        responder=sent.append,
    )
    record = await execution.run()
    assert record.status == "success"
    assert len(sent) == 1
    assert (sent[0].status, sent[0].body, sent[0].content_type) == (200, PNG, "image/png")
    assert record.response is not None and record.response["status"] == 200


async def test_json_responder_gets_json_bytes() -> None:
    sent: list[WebhookResponse] = []
    workflow = workflow_from_dict(
        {"name": "hook", "nodes": [{"name": "Reply", "type": "respond_to_webhook"}]}
    )
    execution = Engine(test_registry()).prepare(
        workflow, items=[{"json": {"ü": 1}}], responder=sent.append
    )
    await execution.run()
    assert sent[0].content_type == "application/json"
    assert sent[0].body == '{"ü": 1}'.encode()


async def test_content_type_header_replaces_the_default() -> None:
    result = await respond(
        {"respond_with": "text", "body": "<b>hi</b>", "headers": {"content-type": "text/html"}}
    )
    assert result.record.response == {"status": 200, "headers": {}, "body": "<b>hi</b>"}
    as_text = await respond(
        {
            "respond_with": "text",
            "body": "not json",
            "headers": {"Content-Type": "application/json"},
        }
    )
    # the body is answered as written; the record keeps it as text since it is not JSON
    assert as_text.error is None
    assert as_text.record.response is not None and as_text.record.response["body"] == "not json"


async def test_only_the_first_response_counts() -> None:
    doc = {
        "name": "two",
        "nodes": [
            {
                "name": "A",
                "type": "respond_to_webhook",
                "parameters": {"respond_with": "text", "body": "a"},
            },
            {
                "name": "B",
                "type": "respond_to_webhook",
                "parameters": {"respond_with": "text", "body": "b"},
            },
        ],
        "connections": [{"from": "A", "to": "B"}],
    }
    execution = Engine(test_registry()).prepare(workflow_from_dict(doc), items=[{"json": {}}])
    record = await execution.run()
    assert record.status == "success"
    assert record.response is not None and record.response["body"] == "a"
    assert record.nodes["B"].runs[0].outputs == {"main": [{"json": {}}]}


@pytest.mark.parametrize(
    ("parameters", "items", "message"),
    [
        ({"respond_with": "binary"}, [{"a": 1}], "the first item has no binary field 'data'"),
        (
            {"respond_with": "binary"},
            [{"json": {}, "binary": {"data": {"mime_type": "a/b", "ref": "x"}}}],
            "binary field 'data' holds no inline base64 `data`",
        ),
        (
            {"respond_with": "binary"},
            [{"json": {}, "binary": {"data": {"data": "***"}}}],
            "binary field 'data' is not valid base64",
        ),
        (
            {"respond_with": "redirect", "location": "{{ json.url }}"},
            [{"url": None}],
            "parameter 'location' must be a URL, got None",
        ),
        (
            {"status": "{{ json.code }}"},
            [{"code": 99}],
            "parameter 'status' must be an HTTP status (100..599), got 99",
        ),
        (
            {"headers": {"X-A": "{{ json.v }}"}},
            [{"v": "a\r\nSet-Cookie: x=1"}],
            "header 'X-A' must not contain line breaks",
        ),
        (
            {"respond_with": "json", "body": "{{ json.b }}"},
            [{"b": float("nan")}],
            "the response body is not JSON",
        ),
    ],
)
async def test_errors(parameters: dict[str, Any], items: list[Any], message: str) -> None:
    result = await respond(parameters, items)
    assert result.status == "error" and result.error is not None
    assert message in result.error.message
    assert result.record.response is None


async def test_error_with_on_error_continue_passes_items_with_the_error() -> None:
    result = await respond({"respond_with": "binary"}, [{"a": 1}], on_error="continue")
    assert result.json() == [{"a": 1, "error": "the first item has no binary field 'data'"}]


async def test_validation() -> None:
    with pytest.raises(WorkflowInvalid) as caught:
        await respond({"respond_with": "redirect", "status": 700, "headers": ["x"]})
    text = str(caught.value)
    assert "parameters.location: `redirect` needs `location`" in text
    assert "parameters.status: must be at most 599, got 700" in text
    assert "parameters.headers: must be an object, got list" in text
    with pytest.raises(WorkflowInvalid) as caught:
        await respond({"respond_with": "text"})
    assert "parameters.body: `text` needs `body`" in str(caught.value)
    with pytest.raises(WorkflowInvalid) as caught:
        await respond({"respond_with": "html"})
    assert "parameters.respond_with: must be one of" in str(caught.value)

"""Every example in examples/ runs and gives the result its description promises."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flowlite.local import run_file
from tests.httpserver import TestServer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


async def run(name: str, items: Any = None) -> list[Any]:
    record, last = await run_file(str(EXAMPLES / name), items, None)
    assert record.status == "success", record.error
    return [it["json"] for it in last]


async def test_hello() -> None:
    assert await run("hello.json") == [{"greeting": "Hello, world!"}]
    assert await run("hello.json", {"name": "Ada"}) == [{"name": "Ada", "greeting": "Hello, Ada!"}]


async def test_branching() -> None:
    items = [{"id": 1, "total": 250}, {"id": 2, "total": 40}]
    assert await run("branching.yaml", items) == [
        {"id": 1, "total": 250, "priority": "high"},
        {"id": 2, "total": 40, "priority": "normal"},
    ]


async def test_merge_by_field() -> None:
    assert await run("merge-by-field.json") == [
        {"order": 1, "total": 30, "name": "Ada"},
        {"order": 2, "total": 12, "name": "Grace"},
        {"order": 3, "total": 99, "name": "Ada"},
    ]


async def test_error_output() -> None:
    record, _ = await run_file(str(EXAMPLES / "error-output.json"), None, None)
    assert record.status == "success"
    assert record.nodes["Sum"].runs[0].outputs["main"][0]["json"] == {
        "sum_line_total": 39,
        "count_sku": 2,
    }
    bad = record.nodes["Report bad rows"].runs[0].outputs["main"]
    assert [it["json"]["sku"] for it in bad] == ["B-2"]
    assert "three" in bad[0]["json"]["error"]


async def test_subworkflow() -> None:
    assert await run("subworkflow.json", [{"price": 10}, {"price": 3.5}]) == [
        {"price": 10, "tax": 2.0, "gross": 12.0},
        {"price": 3.5, "tax": 0.7, "gross": 4.2},
    ]


async def test_http_pagination() -> None:
    server = TestServer()
    server.start()
    try:
        records = await run("http-pagination.json", {"api": server.url("")})
    finally:
        server.stop()
    assert [r["id"] for r in records] == [11, 12, 21, 22, 31, 32]
    assert [r.path for r in server.requests] == ["/cursor"] * 3


async def test_code() -> None:
    record, last = await run_file(
        str(EXAMPLES / "code.json"), [{"text": "the cat and the hat"}], None
    )
    assert record.status == "success"
    assert [it["json"] for it in last] == [
        {"text": "the cat and the hat", "words": 5, "most_common": "the"}
    ]
    assert record.nodes["Count words"].runs[0].logs == ["item 0: 5 words"]


def test_every_example_is_tested() -> None:
    tested = {
        "hello.json",
        "branching.yaml",
        "merge-by-field.json",
        "error-output.json",
        "subworkflow.json",
        "subworkflow-child.yaml",
        "http-pagination.json",
        "code.json",
    }
    present = {p.name for p in EXAMPLES.iterdir() if p.suffix in (".json", ".yaml", ".yml")}
    untested = present - tested
    assert not untested, f"examples without a test: {sorted(untested)}"


@pytest.mark.parametrize(
    "path", sorted(p.name for p in EXAMPLES.iterdir() if p.suffix in (".json", ".yaml"))
)
def test_every_example_validates(path: str) -> None:
    from flowlite.model import load_workflow
    from flowlite.registry import Registry
    from flowlite.validation import problems_of

    assert problems_of(load_workflow(EXAMPLES / path), Registry.default()) == []

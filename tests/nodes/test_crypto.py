"""The `crypto` node, through the real executor."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest

from flowlite.testing import node_problems, run_node


def problems(parameters: dict[str, Any]) -> list[str]:
    return node_problems("crypto", parameters)


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha256", "sha512", "sha3_256"])
async def test_hash_every_algorithm(algorithm: str) -> None:
    result = await run_node(
        "crypto",
        {"operation": "hash", "algorithm": algorithm, "value": "{{ json.email }}"},
        [{"email": "ada@example.org"}, {"email": "bob@example.org"}],
    )
    assert result.json() == [
        {"email": e, "hash": hashlib.new(algorithm, e.encode()).hexdigest()}
        for e in ("ada@example.org", "bob@example.org")
    ]


async def test_hash_defaults_base64_and_into() -> None:
    result = await run_node(
        "crypto", {"value": "héllo", "encoding": "base64", "into": "out.digest"}, [{"a": 1}]
    )
    expected = base64.b64encode(hashlib.sha256("héllo".encode()).digest()).decode()
    assert result.json() == [{"a": 1, "out": {"digest": expected}}]


async def test_hash_of_non_text_values_is_of_their_sorted_json() -> None:
    result = await run_node(
        "crypto", {"value": "{{ json.obj }}"}, [{"obj": {"b": 2, "a": [1, "é"]}}, {"obj": 42}]
    )
    first, second = result.json()
    assert first["hash"] == hashlib.sha256('{"a":[1,"é"],"b":2}'.encode()).hexdigest()
    assert second["hash"] == hashlib.sha256(b"42").hexdigest()


async def test_hmac() -> None:
    result = await run_node(
        "crypto",
        {"operation": "hmac", "algorithm": "sha512", "value": "{{ json.body }}", "secret": "k3y"},
        [{"body": "payload"}],
    )
    expected = hmac.new(b"k3y", b"payload", "sha512").hexdigest()
    assert result.json() == [{"body": "payload", "hmac": expected}]


async def test_hmac_sha3_base64() -> None:
    result = await run_node(
        "crypto",
        {
            "operation": "hmac",
            "algorithm": "sha3_256",
            "value": "x",
            "secret": "s",
            "encoding": "base64",
        },
        [{}],
    )
    expected = base64.b64encode(hmac.new(b"s", b"x", "sha3_256").digest()).decode()
    assert result.json() == [{"hmac": expected}]


async def test_random_bytes_length_encoding_and_uniqueness() -> None:
    result = await run_node("crypto", {"operation": "random"}, [{}, {}, {}])
    values = [it["random"] for it in result.json()]
    assert all(len(bytes.fromhex(v)) == 16 for v in values)
    assert len(set(values)) == 3
    sized = await run_node(
        "crypto",
        {"operation": "random", "length": 5, "encoding": "base64", "into": "token"},
        [{"keep": True}],
    )
    item = sized.json()[0]
    assert item["keep"] is True and len(base64.b64decode(item["token"])) == 5


async def test_keeps_binary_and_empty_input() -> None:
    binary = {"f": {"mime_type": "text/plain", "size": 1, "data": "YQ=="}}
    result = await run_node("crypto", {"value": "a"}, [{"json": {}, "binary": binary}])
    assert result.outputs["main"][0]["binary"] == binary
    assert (await run_node("crypto", {"value": "a"}, [])).json() == []


async def test_null_value_fails_per_item() -> None:
    items = [{"v": "x"}, {"v": None}]
    stopped = await run_node("crypto", {"value": "{{ json.v }}"}, items)
    assert stopped.status == "error"
    assert stopped.error is not None
    assert "'value'" in stopped.error.message and stopped.error.item_index == 1
    routed = await run_node("crypto", {"value": "{{ json.v }}"}, items, on_error="error_output")
    assert [it["v"] for it in routed.json("main")] == ["x"]
    assert routed.json("error")[0]["v"] is None
    cont = await run_node("crypto", {"value": "{{ json.v }}"}, items, on_error="continue")
    assert [("hash" in it, "error" in it) for it in cont.json()] == [(True, False), (False, True)]


async def test_algorithm_from_an_expression_is_checked_per_item() -> None:
    result = await run_node(
        "crypto",
        {"value": "a", "algorithm": "{{ json.alg }}"},
        [{"alg": "md5"}, {"alg": "crc32"}],
        on_error="continue",
    )
    first, second = result.json()
    assert first["hash"] == hashlib.md5(b"a").hexdigest()
    assert "crc32" in second["error"] and "algorithm" in second["error"]


async def test_validation() -> None:
    assert any("value" in p for p in problems({"operation": "hash"}))
    assert any("secret" in p for p in problems({"operation": "hmac", "value": "x"}))
    assert any("algorithm" in p for p in problems({"value": "x", "algorithm": "sha224"}))
    assert any("length" in p for p in problems({"operation": "random", "length": 0}))
    assert any("encoding" in p for p in problems({"operation": "random", "encoding": "hex2"}))
    assert problems({"operation": "random"}) == []
    assert problems({"operation": "hmac", "value": "x", "secret": "y"}) == []

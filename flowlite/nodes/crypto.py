"""The `crypto` node: hash or HMAC a value per item, or generate random bytes.

The value is hashed as UTF-8 text; a value that is not text (a number, an object, a list) is
hashed as its compact JSON text with sorted keys, so equal values give equal hashes. Random
bytes come from :mod:`secrets`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

from flowlite.errors import ExpressionError, NodeError
from flowlite.nodes.transform import param_reader, put_field
from flowlite.sdk import Item, NodeContext, NodeType, Outputs, Param

__all__ = ["NODES"]

ALGORITHMS = ("md5", "sha1", "sha256", "sha512", "sha3_256")
OPERATIONS = ("hash", "hmac", "random")


def _bytes(value: Any, label: str) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if value is None:
        raise NodeError(f"parameter {label!r} is empty (null)")
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def _encode(digest: bytes, encoding: Any) -> str:
    if encoding == "hex":
        return digest.hex()
    if encoding == "base64":
        return base64.b64encode(digest).decode("ascii")
    raise NodeError(f"parameter 'encoding' must be hex or base64, got {encoding!r}")


class Crypto(NodeType):
    type = "crypto"
    display_name = "Crypto"
    category = "data"
    description = (
        "Hashes or HMACs a value per item (md5, sha1, sha256, sha512, sha3_256), or generates "
        "random bytes."
    )
    params = (
        Param("operation", "options", options=OPERATIONS, default="hash"),
        Param("algorithm", "options", "For hash and hmac", options=ALGORITHMS, default="sha256"),
        Param(
            "value",
            "json",
            "For hash and hmac: the value, usually an expression such as {{ json.email }} "
            "(non-text values are hashed as JSON text with sorted keys)",
        ),
        Param("secret", "string", "For hmac: the key"),
        Param(
            "encoding",
            "options",
            "How the digest or random bytes are written",
            options=("hex", "base64"),
            default="hex",
        ),
        Param(
            "length",
            "integer",
            "For random: how many bytes",
            default=16,
            minimum=1,
            maximum=1024,
        ),
        Param("into", "string", "The output field (default: hash, hmac or random)"),
    )

    def check(self, parameters: dict[str, Any]) -> list[tuple[str, str]]:
        operation = parameters.get("operation", "hash")
        problems: list[tuple[str, str]] = []
        if operation in ("hash", "hmac") and parameters.get("value") is None:
            problems.append(("value", f"{operation} needs a value"))
        if operation == "hmac" and parameters.get("secret") is None:
            problems.append(("secret", "hmac needs a secret"))
        return problems

    async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
        read_operation = param_reader(ctx, "operation")
        read_algorithm = param_reader(ctx, "algorithm")
        read_encoding = param_reader(ctx, "encoding")
        read_into = param_reader(ctx, "into")
        out: list[Item] = []
        for index, source in enumerate(items):
            try:
                operation = read_operation(index)
                encoding = read_encoding(index)
                if operation == "random":
                    length = ctx.param("length", index)
                    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
                        raise NodeError(
                            f"parameter 'length' must be a positive whole number, got {length!r}"
                        )
                    result = _encode(secrets.token_bytes(length), encoding)
                elif operation in ("hash", "hmac"):
                    algorithm = read_algorithm(index)
                    if algorithm not in ALGORITHMS:
                        raise NodeError(
                            f"parameter 'algorithm' must be one of {', '.join(ALGORITHMS)}, "
                            f"got {algorithm!r}"
                        )
                    data = _bytes(ctx.param("value", index), "value")
                    if operation == "hash":
                        digest = hashlib.new(algorithm, data).digest()
                    else:
                        key = _bytes(ctx.param("secret", index), "secret")
                        digest = hmac.new(key, data, algorithm).digest()
                    result = _encode(digest, encoding)
                else:
                    raise NodeError(
                        f"parameter 'operation' must be hash, hmac or random, got {operation!r}"
                    )
                json = dict(source["json"])
                put_field(json, read_into(index) or operation, result)
            except (NodeError, ExpressionError) as exc:
                failed = ctx.item_error(index, exc)
                if failed is not None:
                    out.append(failed)
                continue
            binary = source.get("binary")
            out.append({"json": json, "binary": binary} if binary else {"json": json})
        return {"main": out}


NODES: list[type[NodeType]] = [Crypto]

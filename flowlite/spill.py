"""Large node outputs kept out of memory: spilled to JSON Lines files in the data directory.

When a node run finishes, each output is encoded in chunks; once an output passes the spill
threshold its items are written to ``<data dir>/executions/<execution id>/<file>.jsonl`` (one item
a line) and the run keeps an empty list plus a :class:`SpillRef` in its place. The API pages
through such a file (:func:`read_items`) using the byte offsets of every
:data:`MARK_EVERY`-th line, so no request loads a whole output.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import msgspec

from flowlite.sdk import Item

__all__ = ["MARK_EVERY", "SpillRef", "read_items", "remove_execution_files", "spill_output"]

MARK_EVERY = 1000
_CHUNK = 1000
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


class SpillRef(msgspec.Struct):
    """Where a spilled output lives, and how big it is."""

    file: str
    items: int
    bytes: int
    #: byte offset of item 0, MARK_EVERY, 2 * MARK_EVERY, ...
    marks: list[int]


def _file_name(node: str, run_index: int, output: str) -> str:
    digest = hashlib.sha256(f"{node}\x00{output}".encode()).hexdigest()[:16]
    return f"{digest}.{run_index}.jsonl"


def spill_output(
    directory: Path, node: str, run_index: int, output: str, items: list[Item], threshold: int
) -> SpillRef | None:
    """Write ``items`` to a file when they encode to more than ``threshold`` bytes; else ``None``.

    Items are encoded a chunk at a time, so at most one chunk (plus what is below the threshold)
    is held as bytes.
    """
    buffered: list[bytes] = []
    size = 0
    count = 0
    marks: list[int] = []
    handle: Any = None
    name = _file_name(node, run_index, output)
    try:
        for start in range(0, len(items), _CHUNK):
            chunk = items[start : start + _CHUNK]
            marks.append(size)  # _CHUNK == MARK_EVERY: a chunk starts at every mark
            data = _encoder.encode_lines(chunk)
            size += len(data)
            count += len(chunk)
            if handle is None:
                buffered.append(data)
                if size > threshold:
                    directory.mkdir(parents=True, exist_ok=True)
                    handle = open(directory / name, "wb")  # noqa: SIM115 - closed in finally
                    for part in buffered:
                        handle.write(part)
                    buffered.clear()
            else:
                handle.write(data)
    finally:
        if handle is not None:
            handle.close()
    if handle is None:
        return None
    return SpillRef(name, count, size, marks)


def read_items(directory: Path, ref: SpillRef, offset: int, limit: int) -> list[Item]:
    """Items ``offset`` to ``offset + limit`` of a spilled output."""
    if offset >= ref.items or limit <= 0:
        return []
    mark = min(offset // MARK_EVERY, len(ref.marks) - 1)
    skip = offset - mark * MARK_EVERY
    out: list[Item] = []
    with open(directory / ref.file, "rb") as handle:
        handle.seek(ref.marks[mark])
        for line in handle:
            if skip:
                skip -= 1
                continue
            out.append(_decoder.decode(line))
            if len(out) >= limit:
                break
    return out


def remove_execution_files(directory: Path) -> None:
    """Delete an execution's spilled outputs (nothing when it has none)."""
    shutil.rmtree(directory, ignore_errors=True)

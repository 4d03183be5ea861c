"""Built-in nodes (being written)."""

from flowlite.sdk import NodeType

NODES: list[type[NodeType]] = []

"""Built-in node types. Each module listed here exposes ``NODES``: its NodeType subclasses."""

BUILTIN_MODULES: tuple[str, ...] = (
    "flowlite.nodes.triggers",
    "flowlite.nodes.flow",
    "flowlite.nodes.merge",
    "flowlite.nodes.subworkflow",
    "flowlite.nodes.respond",
    "flowlite.nodes.transform",
    "flowlite.nodes.listops",
    "flowlite.nodes.summarize",
    "flowlite.nodes.date_time",
    "flowlite.nodes.crypto",
    "flowlite.nodes.http_request",
    "flowlite.nodes.code",
)

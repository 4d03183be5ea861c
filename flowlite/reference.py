"""Generated reference text for the README: the node catalog, from the registry itself.

`python -m flowlite.reference` rewrites the README's generated sections; a test fails when the
README and the code disagree.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flowlite.registry import Registry
from flowlite.sdk import NodeType, Param

__all__ = ["nodes_markdown", "update_readme"]


def _param_type(param: Param) -> str:
    kinds = param.alternatives or (param.type,)
    text = " or ".join(kinds)
    if param.options:
        text = " \\| ".join(f"`{o}`" for o in param.options)
    elif param.type == "list" and param.element:
        text = f"list of {param.element}"
    elif param.type == "list" and param.fields:
        text = "list of {" + ", ".join(f.name for f in param.fields) + "}"
    elif param.type == "object" and param.fields:
        text = "{" + ", ".join(f.name for f in param.fields) + "}"
    return text


def _default(value: Any) -> str:
    if value is None:
        return ""
    return f"`{value}`" if not isinstance(value, str) else f"`{value!r}`".replace("'", '"')


def _node_section(node_type: NodeType) -> list[str]:
    outputs = ", ".join(f"`{o}`" for o in node_type.outputs) or "named by its parameters"
    inputs = "none (trigger)" if node_type.inputs == 0 else str(node_type.inputs)
    lines = [
        f"#### `{node_type.type}` (v{node_type.version})",
        "",
        f"{node_type.description} Inputs: {inputs}. Outputs: {outputs}.",
        "",
    ]
    if node_type.params:
        lines += ["| parameter | type | default | meaning |", "| --- | --- | --- | --- |"]
        for param in node_type.params:
            name = f"`{param.name}`" + (" (required)" if param.required else "")
            meaning = param.description.replace("|", "\\|").replace("\n", " ")
            lines.append(
                f"| {name} | {_param_type(param)} | {_default(param.default)} | {meaning} |"
            )
        lines.append("")
    return lines


def nodes_markdown(registry: Registry | None = None) -> str:
    """The node catalog as Markdown, grouped by category."""
    registry = registry or Registry.default(plugins=False)
    lines: list[str] = []
    titles = {
        "trigger": "Triggers",
        "flow": "Flow",
        "data": "Data",
        "integration": "Integrations",
        "other": "Other",
    }
    current = None
    for node_type in registry.latest():
        if node_type.category != current:
            current = node_type.category
            lines += [f"### {titles.get(current, current.title())}", ""]
        lines += _node_section(node_type)
    return "\n".join(lines).rstrip() + "\n"


def _replace(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
    if not pattern.search(text):
        raise ValueError(f"the README has no <!-- {name}:start --> ... <!-- {name}:end --> block")
    return pattern.sub(lambda m: m.group(1) + body + m.group(2), text)


def update_readme(path: Path) -> bool:
    """Rewrite the generated blocks of the README; returns whether anything changed."""
    text = path.read_text(encoding="utf-8")
    updated = _replace(text, "nodes", nodes_markdown())
    if updated != text:
        path.write_text(updated, encoding="utf-8")
    return updated != text


if __name__ == "__main__":
    changed = update_readme(Path(__file__).resolve().parent.parent / "README.md")
    print("README.md updated" if changed else "README.md already up to date")

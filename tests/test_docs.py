"""The README is the manual: it must agree with the code."""

from __future__ import annotations

import re
from pathlib import Path

from flowlite.cli import main
from flowlite.reference import nodes_markdown

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def block(name: str) -> str:
    found = re.search(rf"<!-- {name}:start -->\n(.*?)<!-- {name}:end -->", README, re.S)
    assert found, f"README has no {name} block"
    return found.group(1)


def test_the_node_reference_is_current() -> None:
    assert block("nodes") == nodes_markdown(), "run: .venv/bin/python -m flowlite.reference"


def test_readme_starts_with_the_two_setup_commands() -> None:
    first_block = README.split("```")[1]
    commands = [line for line in first_block.splitlines()[1:] if line.strip()]
    assert [c.split("#")[0].strip() for c in commands] == [
        "bash scripts/serve",
        "bash scripts/test",
    ]


def test_every_cli_command_is_documented() -> None:
    for name, command in main.commands.items():
        assert f"flowlite {name}" in README, f"`flowlite {name}` is not in the README"
        sub = getattr(command, "commands", {})
        for sub_name in sub:
            assert f"flowlite {name} {sub_name}" in README, (
                f"`flowlite {name} {sub_name}` is not in the README"
            )

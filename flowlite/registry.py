"""The node type registry: built-in node types plus plugins from the ``flowlite.nodes`` group.

A plugin package declares an entry point in the group ``flowlite.nodes`` whose object is a
:class:`~flowlite.sdk.NodeType` subclass or a list of them; built-ins are registered the same
way, from :data:`flowlite.nodes.BUILTIN_MODULES`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable
from importlib.metadata import entry_points

from flowlite.errors import InternalError, NotFound
from flowlite.sdk import NodeType

__all__ = ["Registry"]

log = logging.getLogger(__name__)

PLUGIN_GROUP = "flowlite.nodes"


class Registry:
    """Node types by name and version."""

    def __init__(self, types: Iterable[type[NodeType]] = ()) -> None:
        self._types: dict[str, dict[int, NodeType]] = {}
        for node_type in types:
            self.add(node_type)

    @classmethod
    def default(cls, *, plugins: bool = True) -> Registry:
        """The built-in node types, plus installed plugins unless ``plugins`` is false."""
        from flowlite.nodes import BUILTIN_MODULES

        registry = cls()
        for module_name in BUILTIN_MODULES:
            module = importlib.import_module(module_name)
            for node_type in module.NODES:
                registry.add(node_type)
        if plugins:
            registry.load_plugins()
        return registry

    def load_plugins(self) -> None:
        """Register every node type published under the ``flowlite.nodes`` entry-point group."""
        for entry in entry_points(group=PLUGIN_GROUP):
            try:
                loaded = entry.load()
            except Exception as exc:  # a broken plugin must not stop flowlite
                log.warning("plugin %s could not be loaded: %s", entry.name, exc)
                continue
            for node_type in loaded if isinstance(loaded, list | tuple) else [loaded]:
                self.add(node_type)

    def add(self, node_type: type[NodeType]) -> None:
        if not (isinstance(node_type, type) and issubclass(node_type, NodeType)):
            raise InternalError(f"{node_type!r} is not a NodeType subclass")
        versions = self._types.setdefault(node_type.type, {})
        versions[node_type.version] = node_type()

    def find(self, type_name: str, version: int | None = None) -> NodeType | None:
        """The node type, or ``None``; the latest version when ``version`` is ``None``."""
        versions = self._types.get(type_name)
        if not versions:
            return None
        if version is None:
            return versions[max(versions)]
        return versions.get(version)

    def get(self, type_name: str, version: int | None = None) -> NodeType:
        found = self.find(type_name, version)
        if found is None:
            if type_name in self._types and version is not None:
                known = ", ".join(str(v) for v in sorted(self._types[type_name]))
                raise NotFound(f"node type {type_name!r} has no version {version} (has {known})")
            raise NotFound(f"unknown node type {type_name!r}")
        return found

    def versions(self, type_name: str) -> list[int]:
        return sorted(self._types.get(type_name, {}))

    def latest(self) -> list[NodeType]:
        """The latest version of every type, sorted by category then name."""
        found = [versions[max(versions)] for versions in self._types.values()]
        return sorted(found, key=lambda t: (t.category, t.type))

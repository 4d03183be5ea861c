"""Fixtures shared by the node tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.httpserver import TestServer


@pytest.fixture
def http_server() -> Iterator[TestServer]:
    """A real HTTP server on 127.0.0.1 (see tests/httpserver.py), fresh for each test."""
    server = TestServer()
    server.start()
    yield server
    server.stop()

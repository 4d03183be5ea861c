"""The `code` node through the real executor and the real sandbox pool."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from flowlite.executor import Engine
from flowlite.local import LazySandbox
from flowlite.testing import run_node, test_registry


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    sandbox = LazySandbox()
    yield Engine(test_registry(), code_runner=sandbox)
    await sandbox.close()


async def test_all_items_mode(engine: Engine) -> None:
    code = "return [{'total': sum(i['n'] for i in items), 'count': len(items)}]"
    result = await run_node("code", {"code": code}, [{"n": 1}, {"n": 2}], engine=engine)
    assert result.json() == [{"total": 3, "count": 2}]


async def test_each_item_mode_wraps_drops_and_logs(engine: Engine) -> None:
    code = "print('seen', index)\nif item['n'] == 2:\n    return None\nreturn {'double': item['n'] * 2}"
    result = await run_node(
        "code", {"code": code, "mode": "each_item"}, [{"n": 1}, {"n": 2}, {"n": 3}], engine=engine
    )
    assert result.json() == [{"double": 2}, {"double": 6}]
    assert result.run is not None and result.run.logs == ["seen 0", "seen 1", "seen 2"]


async def test_an_exception_fails_the_node_with_the_users_line(engine: Engine) -> None:
    code = "x = 1\nreturn [{'v': items[0]['missing']}]"
    result = await run_node("code", {"code": code}, [{"n": 1}], engine=engine)
    assert result.status == "error" and result.error is not None
    assert result.error.node == "Node" and "KeyError" in result.error.message
    assert result.run is not None and any("line 2" in line for line in result.run.logs)


async def test_a_timeout_is_a_clear_node_error(engine: Engine) -> None:
    result = await run_node(
        "code", {"code": "while True:\n    pass", "timeout": 0.5}, [{}], engine=engine
    )
    assert result.error is not None and "timed out" in result.error.message
    again = await run_node("code", {"code": "return [{'ok': True}]"}, [{}], engine=engine)
    assert again.json() == [{"ok": True}]  # the pool replaced the killed worker


async def test_on_error_continue(engine: Engine) -> None:
    result = await run_node(
        "code", {"code": "raise ValueError('nope')"}, [{"n": 1}], engine=engine, on_error="continue"
    )
    assert result.status == "success"
    assert result.json()[0]["n"] == 1 and "nope" in result.json()[0]["error"]


async def test_code_is_required_and_not_an_expression(engine: Engine) -> None:
    from flowlite.errors import WorkflowInvalid

    with pytest.raises(WorkflowInvalid, match="code: is required"):
        await run_node("code", {}, [{}], engine=engine)
    # braces in code are code, not expressions
    result = await run_node("code", {"code": "return [{'t': '{{ json.x }}'}]"}, [{}], engine=engine)
    assert result.json() == [{"t": "{{ json.x }}"}]

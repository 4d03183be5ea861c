"""The editor end to end in headless Chromium against a real `flowlite serve`.

A new user builds webhook -> if -> set from the palette, connects the nodes by dragging, sets
parameters with an expression, saves, runs with test data, sees each node's output, activates
the workflow, calls its production webhook and finds that execution in the list. Screenshots of
the main pages go to artifacts/screenshots.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.web.conftest import ORDERS, LiveServer, screenshot

pytestmark = pytest.mark.slow


def center(page: Any, selector: str) -> tuple[float, float]:
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def drag(page: Any, source: str, target: str) -> None:
    x1, y1 = center(page, source)
    x2, y2 = center(page, target)
    page.mouse.move(x1, y1)
    page.mouse.down()
    page.mouse.move((x1 + x2) / 2, (y1 + y2) / 2, steps=4)
    page.mouse.move(x2, y2, steps=4)
    page.mouse.up()


def add_from_palette(page: Any, search: str, name: str) -> None:
    page.keyboard.press("Escape")  # nothing selected: the new node is not connected to anything
    page.fill("#palette-search", search)
    page.press("#palette-search", "Enter")
    page.wait_for_selector(f'#node-form[data-node="{name}"]')


def node(name: str) -> str:
    return f'.node[data-name="{name}"]'


def test_build_run_activate_and_call_the_webhook(page: Any, live_server: LiveServer) -> None:
    page.goto(f"{live_server.url}/workflows")
    page.get_by_text("No workflows yet").wait_for()
    screenshot(page, "01-workflows-empty")
    page.get_by_role("link", name="New workflow").first.click()
    page.wait_for_selector("body[data-ready]")
    page.fill("#wf-name", "Big orders")

    # webhook -> if -> set, each from the palette
    add_from_palette(page, "webhook", "Webhook")
    page.fill("#p-path", "big-orders")
    add_from_palette(page, "if", "If")
    page.fill("#p-condition", "{{ json.body.total > 100 }}")
    add_from_palette(page, "edit fields", "Edit fields (set)")
    page.locator('[data-p="fields"] [data-add]').click()
    page.locator('[data-p="fields"] .row [data-mk]').nth(0).fill("priority")
    page.locator('[data-p="fields"] .row [data-mv]').nth(0).fill("high")
    page.locator('[data-p="fields"] [data-add]').click()
    page.locator('[data-p="fields"] .row [data-mk]').nth(1).fill("total")
    page.locator('[data-p="fields"] .row [data-mv]').nth(1).fill("{{ json.body.total * 2 }}")

    # connect by dragging from an output to an input, then tidy up
    page.click('[data-act="fit"]')
    drag(page, f'{node("Webhook")} .port[data-out="0"]', f'{node("If")} .port[data-in="0"]')
    drag(
        page, f'{node("If")} .port[data-out="0"]', f'{node("Edit fields (set)")} .port[data-in="0"]'
    )
    page.wait_for_function("document.querySelectorAll('#canvas [data-edge]').length === 2")
    page.click('[data-act="layout"]')
    assert "Unsaved" in page.inner_text("#save-state")

    page.click("#save")
    page.wait_for_function("document.querySelector('#save-state').textContent.includes('Saved')")
    workflow_id = page.url.rsplit("/", 1)[1]
    saved = live_server.http.get(f"/api/v1/workflows/{workflow_id}").json()["document"]
    assert saved["name"] == "Big orders"
    assert [n["type"] for n in saved["nodes"]] == ["webhook", "if", "set"]
    assert saved["connections"] == [
        {"from": "Webhook", "to": "If"},
        {"from": "If", "to": "Edit fields (set)"},
    ]
    assert saved["nodes"][2]["parameters"]["fields"] == {
        "priority": "high",
        "total": "{{ json.body.total * 2 }}",
    }
    screenshot(page, "02-editor-built")

    # run with test data: every node shows its output
    page.click("#run")
    page.fill("#run-items", '{"body": {"total": 120}}')
    page.click('#run-form button[value="run"]')
    for name in ("Webhook", "If", "Edit fields (set)"):
        page.wait_for_selector(f"{node(name)}.st-success")
    assert page.inner_text(f'{node("If")} .port[data-out="0"] .port-label') == "true 1"
    page.click(node("Edit fields (set)"))
    page.wait_for_selector('#data .data-node:text-is("Edit fields (set)")')
    assert page.inner_text('#data [data-testid="item-count"]') == "1 item"
    table = page.inner_text("#data table")
    assert "priority" in table and "high" in table and "240" in table
    # the expression preview now shows the value for the item that reached the node
    page.wait_for_selector('[data-p="fields"] .row:nth-child(2) .pv .pv-value')
    assert page.inner_text('[data-p="fields"] .row:nth-child(2) .pv .pv-value') == "240"
    screenshot(page, "03-editor-after-run")
    page.click(node("If"))
    page.wait_for_selector('#data .data-node:text-is("If")')
    page.get_by_role("button", name="JSON").click()
    page.wait_for_selector("#data pre.json")
    assert '"total": 120' in page.inner_text("#data pre.json")

    # activate, then call the production webhook
    page.click("#active")
    page.wait_for_selector('#active[aria-checked="true"]')
    assert live_server.http.get(f"/api/v1/workflows/{workflow_id}").json()["active"] is True
    if live_server.http.post("/webhook/big-orders", json={"total": 500}).status_code == 404:
        pytest.skip("the server has no production webhook route yet (the triggers issue)")
    page.goto(f"{live_server.url}/executions")
    row = page.locator("tbody tr", has_text="webhook").first
    row.wait_for()
    assert "Big orders" in row.inner_text()
    screenshot(page, "04-executions")
    row.locator("a.badge").click()
    page.wait_for_selector("body[data-ready]")
    page.wait_for_selector(f"{node('Edit fields (set)')}.st-success")
    page.click(node("Edit fields (set)"))
    page.wait_for_selector("#data table")
    assert "1000" in page.inner_text("#data table")
    screenshot(page, "05-execution-detail")


def test_list_import_history_and_keyboard(page: Any, live_server: LiveServer) -> None:
    created = live_server.http.post("/api/v1/workflows", json=ORDERS).json()
    page.goto(f"{live_server.url}/workflows")
    page.get_by_role("link", name="Import").click()
    page.fill("#import-text", "name: Imported\nnodes:\n  - {name: Start, type: manual_trigger}\n")
    page.get_by_role("button", name="Import", exact=True).click()
    page.wait_for_url(re.compile(r"/workflows/[0-9A-Z]{26}$"))
    page.wait_for_selector(node("Start"))

    # keyboard: add a node after the focused one, rename it with F2, delete, undo
    page.focus(node("Start"))
    page.keyboard.press("/")
    page.keyboard.type("no operation")
    page.keyboard.press("Enter")
    page.wait_for_selector(node("No operation"))
    page.wait_for_selector('#node-form[data-node="No operation"]')
    page.focus(node("No operation"))
    page.keyboard.press("F2")
    page.keyboard.type("Pass")
    page.keyboard.press("Enter")
    page.wait_for_selector(node("Pass"))
    assert page.locator("#canvas [data-edge]").count() == 1  # auto-connected from Start
    page.focus(node("Pass"))
    page.keyboard.press("Delete")
    page.wait_for_selector(node("Pass"), state="detached")
    page.keyboard.press("Control+z")
    page.wait_for_selector(node("Pass"))
    # connections from the panel, without a mouse drag
    page.focus(node("Start"))
    page.keyboard.press("Enter")
    page.wait_for_selector('#node-form[data-node="Start"] #node-links li')
    assert page.inner_text("#node-links li").startswith("\u2192 Pass")
    page.get_by_role("button", name="Remove the connection \u2192 Pass").click()
    page.wait_for_function("document.querySelectorAll('#canvas [data-edge]').length === 0")
    page.select_option("#link-to", label="Pass")
    page.get_by_role("button", name="Connect", exact=True).click()
    page.wait_for_function("document.querySelectorAll('#canvas [data-edge]').length === 1")
    page.keyboard.press("Control+s")
    page.wait_for_function("document.querySelector('#save-state').textContent.includes('v2')")

    page.goto(f"{live_server.url}/workflows?q=alerts")
    page.wait_for_selector(f"#wf-{created['id']}")
    assert page.locator("tbody tr").count() == 1
    screenshot(page, "06-workflows-list")
    page.goto(f"{live_server.url}/workflows/{created['id']}")
    page.wait_for_selector("body[data-ready]")
    page.click(node("Incoming"))
    page.wait_for_selector("#node-form .hint-box")
    assert "/webhook/orders" in page.inner_text("#node-form .hint-box")
    page.fill("#p-path", "orders-v2")
    page.click("#save")
    page.wait_for_function("document.querySelector('#save-state').textContent.includes('v2')")
    screenshot(page, "07-editor-panel")
    page.goto(f"{live_server.url}/workflows/{created['id']}/versions")
    page.wait_for_selector(".d-add")
    assert "orders-v2" in page.inner_text(".d-add")
    screenshot(page, "08-versions")


FAILING = {
    "name": "Failing",
    "nodes": [
        {"name": "Start", "type": "manual_trigger"},
        {
            "name": "Check",
            "type": "stop_and_error",
            "parameters": {"message": "total is {{ json.total }}"},
        },
    ],
    "connections": [{"from": "Start", "to": "Check"}],
}


def test_errors_pins_live_list_and_unsaved_warning(page: Any, live_server: LiveServer) -> None:
    created = live_server.http.post("/api/v1/workflows", json=FAILING).json()
    page.goto(f"{live_server.url}/executions")
    page.wait_for_selector("body[data-live]")
    live_server.http.post(f"/api/v1/workflows/{created['id']}/run", json={"items": {"total": 3}})
    # the list follows new executions without a reload
    page.locator("tbody tr", has_text="Failing").first.wait_for()
    assert "total is 3" in page.inner_text("tbody tr")

    page.goto(f"{live_server.url}/workflows/{created['id']}")
    page.wait_for_selector("body[data-ready]")
    page.click("#run")
    page.fill("#run-items", '{"total": 42}')
    page.click('#run-form button[value="run"]')
    page.wait_for_selector(f"{node('Check')}.st-error")
    assert page.inner_text(f"{node('Check')} .node-error") == "total is 42"
    page.wait_for_selector("#flash .alert-error")
    assert "The run failed at “Check”: total is 42" in page.inner_text("#flash")
    page.click(node("Check"))
    page.wait_for_selector('#data .data-node:text-is("Check")')
    assert "total is 42" in page.inner_text("#data .alert-error")
    screenshot(page, "09-editor-error")

    # pin the trigger's output: the next run uses it, whatever the test input says
    page.click(node("Start"))
    page.wait_for_selector('#data .data-node:text-is("Start")')
    page.click("#data [data-pin]")
    page.wait_for_selector(f"{node('Start')}.pinned")
    assert page.inner_text("#data [data-pin]") == "Unpin output"
    page.click("#run")
    page.fill("#run-items", '{"total": 1}')
    page.click('#run-form button[value="run"]')
    page.wait_for_function(
        "document.querySelector('.node[data-name=\"Check\"] .node-error').textContent === 'total is 42'"
        " && !document.querySelector('#run').disabled"
    )

    # disable with D, duplicate with Ctrl+D; leaving with unsaved changes asks first
    page.focus(node("Check"))
    page.keyboard.press("d")
    page.wait_for_selector(f"{node('Check')}.disabled")
    page.keyboard.press("Control+d")
    page.wait_for_selector(node("Check 2"))
    dialogs: list[str] = []

    def dismiss(dialog: Any) -> None:
        dialogs.append(dialog.type)
        dialog.dismiss()

    page.on("dialog", dismiss)
    page.close(run_before_unload=True)
    page.wait_for_timeout(300)
    assert dialogs == ["beforeunload"]
    pinned = live_server.http.get(f"/api/v1/workflows/{created['id']}").json()["document"]
    assert "pinned" not in pinned  # nothing was saved


def test_import_page_screenshot(page: Any, live_server: LiveServer) -> None:
    page.goto(f"{live_server.url}/workflows/import")
    page.fill("#import-text", "name: Broken\nnodes:\n  - {name: A, type: nope}\n")
    page.get_by_role("button", name="Import", exact=True).click()
    page.wait_for_selector("#import .alert-error")
    assert "unknown node type 'nope'" in page.inner_text("#import .alert-error")
    screenshot(page, "10-import-problems")


def test_save_problems_show_on_their_nodes(page: Any, live_server: LiveServer) -> None:
    page.goto(f"{live_server.url}/workflows/new")
    page.wait_for_selector("body[data-ready]")
    add_from_palette(page, "webhook", "Webhook")
    page.click("#save")
    page.wait_for_selector(f"{node('Webhook')}.st-error")
    assert page.inner_text(f"{node('Webhook')} .node-error") == "path: is required"
    assert "node 'Webhook'.parameters.path: is required" in page.inner_text("#flash")
    page.fill("#p-path", "hook")
    page.click("#save")
    page.wait_for_function("document.querySelector('#save-state').textContent.includes('v1')")
    assert page.locator(f"{node('Webhook')}.st-error").count() == 0


def test_listen_for_a_test_webhook_call(page: Any, live_server: LiveServer) -> None:
    created = live_server.http.post(
        "/api/v1/workflows",
        json={
            **ORDERS,
            "name": "Listening",
            "nodes": [
                {**ORDERS["nodes"][0], "parameters": {"path": "listen-here"}},
                *ORDERS["nodes"][1:],
            ],
        },
    ).json()
    page.goto(f"{live_server.url}/workflows/{created['id']}")
    page.wait_for_selector("body[data-ready]")
    page.click(node("Incoming"))
    page.get_by_role("button", name="Listen for a test call").click()
    page.wait_for_selector("#flash:has-text('Waiting for one call')")
    assert f"POST {live_server.url}/webhook-test/listen-here" in page.inner_text("#flash")
    answer = live_server.http.post("/webhook-test/listen-here", json={"total": 900})
    assert answer.status_code == 200
    page.wait_for_selector(f"{node('Tag')}.st-success")
    page.click(node("Tag"))
    page.wait_for_selector('#data .data-node:text-is("Tag")')
    assert "900" in page.inner_text("#data table")

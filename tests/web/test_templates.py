"""Every fragment template rendered on its own with the data its route gives it.

The last test checks that each fragment (``_*.html``) is rendered here, so a new fragment needs a
test.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from flowlite.execution_store import ExecutionSummary
from flowlite.registry import Registry
from flowlite.store import VersionSummary
from flowlite.web.common import TEMPLATES_DIR, environment
from flowlite.web.editor import icon_of, node_hints
from flowlite.web.forms import param_fields, settings_fields
from flowlite.web.pages import WorkflowRow


def render(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)


class _Checker(HTMLParser):
    """Collects ids and checks that every form control has an accessible name."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.label_for: set[str] = set()
        self.controls: list[dict[str, str | None]] = []
        self.open_labels = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.append(str(found["id"]))
        if tag == "label":
            self.open_labels += 1
            if found.get("for"):
                self.label_for.add(str(found["for"]))
        if tag in ("input", "select", "textarea") and found.get("type") != "hidden":
            self.controls.append({**found, "_in_label": "1" if self.open_labels else None})

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.open_labels -= 1


def check_html(html: str) -> _Checker:
    """Ids are unique and every control is labelled (<label for>, wrapped, or aria-label)."""
    checker = _Checker()
    checker.feed(html)
    duplicates = {i for i in checker.ids if checker.ids.count(i) > 1 and "__i__" not in i}
    assert not duplicates, duplicates
    for control in checker.controls:
        named = (
            control.get("aria-label")
            or control.get("_in_label")
            or (control.get("id") in checker.label_for)
        )
        assert named, f"unlabelled control {control}"
    return checker


def row(**changes: Any) -> WorkflowRow:
    values: dict[str, Any] = {
        "id": "01ABC",
        "name": "Order <alerts>",
        "active": True,
        "version": 3,
        "updated_at": "2026-11-21T10:00:00.000Z",
        "tags": ["orders", "a&b"],
        "last_status": "error",
        "last_execution": "01EXE",
    }
    values.update(changes)
    return WorkflowRow(**values)


def test_workflow_rows_list_escape_and_link() -> None:
    html = render(
        "workflows/_rows.html",
        rows=[row(), row(id="01DEF", active=False, last_status=None, tags=[])],
        total=2,
        q="",
        tag="",
        active="",
        offset=0,
        page_size=50,
    )
    check_html(html)
    assert "Order &lt;alerts&gt;" in html
    assert 'href="/workflows?tag=a%26b"' in html
    assert 'class="badge s-error" href="/executions/01EXE"' in html
    assert "never run" in html
    assert 'aria-checked="true"' in html and 'aria-checked="false"' in html
    assert 'hx-confirm="Delete the workflow “Order &lt;alerts&gt;”' in html
    assert "2 of 2 workflows" in html


def test_workflow_rows_empty_states() -> None:
    first = render(
        "workflows/_rows.html", rows=[], total=0, q="", tag="", active="", offset=0, page_size=50
    )
    assert "No workflows yet" in first and 'href="/workflows/new"' in first
    filtered = render(
        "workflows/_rows.html", rows=[], total=0, q="x", tag="", active="", offset=0, page_size=50
    )
    assert "No workflow matches these filters" in filtered


def test_workflow_row_toggle_posts_the_opposite_state() -> None:
    html = render("workflows/_row.html", row=row(active=False))
    assert html.startswith('<tr id="wf-01ABC">')
    assert 'name="active" value="true"' in html
    assert 'hx-post="/workflows/01ABC/active"' in html


def test_import_form_shows_every_problem() -> None:
    html = render(
        "workflows/_import.html",
        text="name: x",
        problems=["node 'A': unknown node type 'nope'", "nodes: is required"],
    )
    check_html(html)
    assert html.count("<li>") == 2 and "unknown node type" in html
    assert ">name: x</textarea>" in html
    assert 'enctype="multipart/form-data"' in html


def test_diff_marks_added_and_removed_lines() -> None:
    lines = ["--- version 1", "+++ version 2", "@@ -1 +1 @@", '-  "a": 1', '+  "a": 2']
    html = render("workflows/_diff.html", diff_lines=lines, from_version=1, to_version=2)
    assert '<span class="d-del">-  &#34;a&#34;: 1</span>' in html
    assert '<span class="d-add">+  &#34;a&#34;: 2</span>' in html
    assert '<span class="">--- version 1</span>' in html
    same = render("workflows/_diff.html", diff_lines=[], from_version=2, to_version=2)
    assert "Only one version so far" in same


@pytest.mark.parametrize("node_type", Registry.default().latest(), ids=lambda t: t.type)
def test_node_panel_of_every_node_type(node_type: Any) -> None:
    node = {"name": "N <1>", "type": node_type.type, "parameters": {}}
    html = render(
        "editor/_panel.html",
        node=node,
        type={**node_type.describe(), "icon": icon_of(node_type)},
        fields=param_fields(node_type.params, {}),
        settings=settings_fields(node),
        hints=node_hints(node, "http://localhost:5678", "UTC"),
    )
    checker = check_html(html)
    assert 'data-node="N &lt;1&gt;"' in html
    for param in node_type.params:
        assert f'data-p="{param.name}"' in html
    for setting in ("on_error", "retry", "timeout", "execute_once", "always_output"):
        assert f'data-p="{setting}"' in html
    assert "node-notes" in checker.ids


def test_node_panel_with_values_hints_and_unknown_parameters() -> None:
    registry = Registry.default()
    webhook = registry.get("webhook")
    node = {
        "name": "Hook",
        "type": "webhook",
        "parameters": {"path": "/orders/", "method": "PUT", "legacy": {"x": 1}},
        "disabled": True,
        "notes": "from the shop",
        "retry": {"max_tries": 3},
        "on_error": "continue",
    }
    html = render(
        "editor/_panel.html",
        node=node,
        type={**webhook.describe(), "icon": "bolt"},
        fields=param_fields(webhook.params, node["parameters"]),
        settings=settings_fields(node),
        hints=node_hints(node, "http://flow.example", "UTC"),
    )
    assert "PUT http://flow.example/webhook/orders" in html
    assert "PUT http://flow.example/webhook-test/orders" in html
    assert "<option selected>PUT</option>" in html
    assert "<option selected>continue</option>" in html
    assert 'id="s-retry-max_tries" type="text" value="3"' in html
    assert "This node is disabled" in html and ">Enable<" in html
    assert ">from the shop</textarea>" in html
    assert 'data-p="legacy" data-k="raw"' in html  # kept, shown as JSON


def test_schedule_panel_lists_the_next_times() -> None:
    node = {"name": "Every day", "type": "schedule_trigger", "parameters": {"cron": "0 9 * * *"}}
    hints = node_hints(node, "http://x", "Europe/Berlin")
    assert len(hints["next_times"]) == 3
    assert all(t.endswith(("09:00 CET", "09:00 CEST")) for t in hints["next_times"])
    schedule = Registry.default().get("schedule_trigger")
    html = render(
        "editor/_panel.html",
        node=node,
        type={**schedule.describe(), "icon": "clock"},
        fields=param_fields(schedule.params, node["parameters"]),
        settings=settings_fields(node),
        hints=hints,
    )
    assert "Next runs" in html and html.count("09:00") == 3


def test_preview_value_and_error() -> None:
    html = render("editor/_preview.html", error=None, value=240, text="240", kind="int")
    assert '<span class="pv-kind">int</span> <span class="pv-value">240</span>' in html
    html = render("editor/_preview.html", error="name 'os' is not defined", value=None, text=None)
    assert "pv-error" in html and "name &#39;os&#39; is not defined" in html
    html = render("editor/_preview.html", waiting=True, error="cannot read", value=None, text=None)
    assert "No input yet" in html and "pv-error" not in html


def data_context(**changes: Any) -> dict[str, Any]:
    items = [{"json": {"id": i, "name": f"<b>{i}</b>", "tags": ["a"]}} for i in range(3)]
    context: dict[str, Any] = {
        "execution": "01EXE",
        "node": "Tag",
        "side": "output",
        "view": "table",
        "run_index": 0,
        "runs": [{"index": 0}],
        "offset": 0,
        "page": 50,
        "sources": json.dumps([["Start", "main"]]),
        "outputs": [("true", 3), ("false", 0)],
        "output": "true",
        "items": items,
        "total": 3,
        "error": None,
        "ran": True,
        "pinned": False,
        "columns": ["id", "name", "tags"],
    }
    context.update(changes)
    return context


def test_data_table_json_paging_and_errors() -> None:
    html = render("editor/_data.html", **data_context())
    assert '<th scope="col">name</th>' in html and "&lt;b&gt;1&lt;/b&gt;" in html
    assert '["a"]' in html.replace("&#34;", '"')
    assert "3 items" in html and "true (3)" in html and "false (0)" in html
    assert 'data-pin="Tag"' in html and 'data-output="true"' in html
    urls = re.findall(r'hx-get="([^"]+)"', html)
    assert any("side=input" in u and "node=Tag" in u and "sources=" in u for u in urls)
    big = render("editor/_data.html", **data_context(total=120, offset=50, view="json"))
    assert "items 51\u2013100 of 120" in big
    assert "Previous" in big and "Next" in big
    assert '<pre class="code json">' in big and "&#34;id&#34;: 0" in big
    failed = render(
        "editor/_data.html",
        **data_context(items=[], total=0, error={"error_class": "NodeError", "message": "bad"}),
    )
    assert 'role="alert"><strong>NodeError</strong> bad' in failed
    assert "No items on this output." in failed
    absent = render("editor/_data.html", **data_context(ran=False, runs=[], items=[]))
    assert "did not run in this execution" in absent


def summary(**changes: Any) -> ExecutionSummary:
    values: dict[str, Any] = {
        "id": "01EXE",
        "workflow_id": "01WF",
        "workflow_name": "Orders",
        "workflow_version": 2,
        "mode": "webhook",
        "status": "error",
        "started_at": "2026-11-21T10:00:00.000Z",
        "finished_at": "2026-11-21T10:00:01.500Z",
        "error": "field 'total' is missing",
        "error_node": "Tag",
        "retry_of": None,
    }
    values.update(changes)
    return ExecutionSummary(**values)


def test_execution_rows() -> None:
    html = render(
        "executions/_rows.html",
        executions=[summary(), summary(id="01RUN", status="running", finished_at=None)],
        next_cursor="01RUN",
        workflow_id="",
        status="",
        mode="",
    )
    assert '<a class="badge s-error" href="/executions/01EXE">error</a>' in html
    assert "<strong>Tag:</strong> field &#39;total&#39; is missing" in html
    assert "1.5 s" in html
    assert html.count("hx-delete=") == 1  # a running execution cannot be deleted
    assert "cursor=01RUN" in html
    empty = render(
        "executions/_rows.html",
        executions=[],
        next_cursor=None,
        workflow_id="",
        status="x",
        mode="",
    )
    assert "match these filters" in empty


def test_execution_summary_actions_follow_the_status() -> None:
    record: dict[str, Any] = {
        "id": "01EXE",
        "workflow": {"id": "01WF", "name": "Orders", "version": 2},
        "mode": "manual",
        "status": "error",
        "started_at": "2026-11-21T10:00:00.000Z",
        "finished_at": "2026-11-21T10:00:00.020Z",
        "error": {"message": "boom", "node": "Tag"},
    }
    html = render("executions/_summary.html", record=record, running=False)
    assert "Retry from failed node" in html and "hx-delete" in html and "Cancel" not in html
    assert "took 20 ms" in html and "<strong>Tag:</strong> boom" in html
    running = render(
        "executions/_summary.html",
        record={**record, "status": "running", "finished_at": None, "error": None},
        running=True,
    )
    assert 'hx-post="/executions/01EXE/cancel"' in running and "Retry" not in running


def test_error_fragment_and_shortcuts() -> None:
    html = render("partials/_error.html", status=404, message="no workflow with id 'x'")
    assert 'role="alert"' in html and "no workflow with id &#39;x&#39;" in html
    shortcuts = render("editor/_shortcuts.html")
    assert "<kbd>F2</kbd>" in shortcuts and "undo" in shortcuts


def test_versions_rows_are_rendered_by_the_page() -> None:
    # the versions table is part of the page, the diff is its fragment
    html = render(
        "workflows/versions.html",
        workflow=type("W", (), {"id": "01WF", "name": "Orders", "version": 2})(),
        versions=[
            VersionSummary(2, "Orders", "2026-11-21T10:00:00.000Z", True),
            VersionSummary(1, "Orders", "2026-11-20T10:00:00.000Z", False),
        ],
        diff_lines=[],
        from_version=1,
        to_version=2,
        nav="workflows",
    )
    assert 'hx-post="/workflows/01WF/versions/1/restore"' in html
    assert "/versions/2/restore" not in html


def test_every_fragment_has_a_test() -> None:
    fragments = {
        str(path.relative_to(TEMPLATES_DIR))
        for path in TEMPLATES_DIR.rglob("_*.html")
        if path.name != "_icons.html" and path.name != "_fields.html"  # included by pages/panel
    }
    source = Path(__file__).read_text(encoding="utf-8")
    missing = sorted(
        f
        for f in fragments
        if f'render(\n        "{f}"' not in source and f'render("{f}"' not in source
    )
    assert not missing, f"fragments without a test: {missing}"

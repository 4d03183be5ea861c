"""The HTML routes over the real app: full pages for the browser, fragments for htmx requests,
and the editor's endpoints (panel, preview, draft runs, data pages)."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import yaml
from litestar.testing import AsyncTestClient

from tests.web.conftest import ORDERS

HTMX = {"HX-Request": "true"}
Client = AsyncTestClient[Any]


async def create(client: Client, document: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await client.post("/api/v1/workflows", json=document or ORDERS)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def finished(client: Client, execution_id: str) -> dict[str, Any]:
    for _ in range(200):
        record: dict[str, Any] = (await client.get(f"/api/v1/executions/{execution_id}")).json()
        if record["status"] not in ("running", "queued"):
            return record
        await asyncio.sleep(0.02)
    raise AssertionError("the execution did not finish")


async def test_home_redirects_to_the_workflows(client: Client) -> None:
    response = await client.get("/", follow_redirects=False)
    assert response.status_code in (302, 307) and response.headers["location"] == "/workflows"


async def test_list_is_a_page_or_a_fragment(client: Client) -> None:
    await create(client)
    page = await client.get("/workflows")
    assert page.status_code == 200 and page.text.startswith("<!doctype html>")
    assert "/static/vendor/htmx.min.js?v=" in page.text and "Order alerts" in page.text
    fragment = await client.get("/workflows", headers=HTMX)
    assert "<html" not in fragment.text and "<table" in fragment.text
    assert "Order alerts" in fragment.text and 'class="tag"' in fragment.text


async def test_search_tag_and_active_filters(client: Client) -> None:
    first = await create(client)
    await create(client, {**ORDERS, "name": "Nightly report", "tags": ["reports"]})
    await client.patch(f"/api/v1/workflows/{first['id']}", json={"active": True})

    async def names(query: str) -> list[str]:
        text = (await client.get(f"/workflows?{query}", headers=HTMX)).text
        return [n for n in ("Order alerts", "Nightly report") if n in text]

    assert await names("q=NIGHT") == ["Nightly report"]
    assert await names("tag=orders") == ["Order alerts"]
    assert await names("active=true") == ["Order alerts"]
    assert await names("active=false") == ["Nightly report"]
    assert await names("q=zzz") == []


async def test_last_execution_status_shows_in_the_list(client: Client) -> None:
    created = await create(client)
    run = await client.post(
        f"/api/v1/workflows/{created['id']}/run?wait=true", json={"items": {"body": {"total": 1}}}
    )
    execution_id = run.json()["id"]
    text = (await client.get("/workflows", headers=HTMX)).text
    assert f'class="badge s-success" href="/executions/{execution_id}"' in text


async def test_toggle_duplicate_and_delete(client: Client) -> None:
    created = await create(client)
    row = await client.post(
        f"/workflows/{created['id']}/active", data={"active": "true"}, headers=HTMX
    )
    assert row.text.startswith(f'<tr id="wf-{created["id"]}">')
    assert 'aria-checked="true"' in row.text
    assert (await client.get(f"/api/v1/workflows/{created['id']}")).json()["active"] is True

    rows = await client.post(f"/workflows/{created['id']}/duplicate", headers=HTMX)
    assert "Order alerts (copy)" in rows.text
    listed = (await client.get("/api/v1/workflows")).json()
    copy_id = next(w["id"] for w in listed["data"] if w["name"] == "Order alerts (copy)")
    copied = (await client.get(f"/api/v1/workflows/{copy_id}")).json()
    assert copied["active"] is False and copied["document"]["nodes"] == ORDERS["nodes"]

    rows = await client.delete(f"/workflows/{copy_id}", headers=HTMX)
    assert rows.status_code == 200 and "Order alerts (copy)" not in rows.text
    assert (await client.get(f"/api/v1/workflows/{copy_id}")).status_code == 404


async def test_import_pasted_yaml_and_uploaded_json(client: Client) -> None:
    pasted = await client.post(
        "/workflows/import",
        files={"text": (None, yaml.safe_dump(ORDERS))},
        headers=HTMX,
    )
    target = pasted.headers["hx-redirect"]
    assert target.startswith("/workflows/")
    stored = (await client.get(f"/api/v1{target}")).json()
    assert stored["document"] == ORDERS

    uploaded = await client.post(
        "/workflows/import",
        files={"file": ("flow.json", json.dumps({**ORDERS, "name": "From file"}), "text/json")},
        follow_redirects=False,
    )
    assert uploaded.status_code in (302, 303) and uploaded.headers["location"].startswith(
        "/workflows/"
    )


async def test_import_lists_every_problem(client: Client) -> None:
    bad = {"name": "Bad", "nodes": [{"name": "A", "type": "nope"}, {"name": "A", "type": "noop"}]}
    response = await client.post(
        "/workflows/import", files={"text": (None, json.dumps(bad))}, headers=HTMX
    )
    assert response.status_code == 200 and "hx-redirect" not in response.headers
    assert "The workflow was not imported" in response.text
    assert "unknown node type" in response.text and "duplicate" in response.text.lower()
    empty = await client.post("/workflows/import", files={"text": (None, " ")}, headers=HTMX)
    assert "paste a workflow or choose a file" in empty.text
    broken = await client.post(
        "/workflows/import", files={"text": (None, "name: [unclosed")}, headers=HTMX
    )
    assert "not valid YAML" in broken.text


async def test_export_as_json_and_yaml(client: Client) -> None:
    created = await create(client)
    as_json = await client.get(f"/workflows/{created['id']}/export")
    assert as_json.headers["content-disposition"] == 'attachment; filename="Order-alerts.json"'
    assert as_json.json() == ORDERS
    as_yaml = await client.get(f"/workflows/{created['id']}/export?format=yaml")
    assert as_yaml.headers["content-type"].startswith("application/yaml")
    assert yaml.safe_load(as_yaml.text) == ORDERS


async def test_versions_diff_and_restore(client: Client) -> None:
    created = await create(client)
    changed = copy.deepcopy(ORDERS)
    changed["nodes"][0]["parameters"]["path"] = "orders-v2"
    await client.put(f"/api/v1/workflows/{created['id']}", json=changed)
    page = await client.get(f"/workflows/{created['id']}/versions")
    assert "v1" in page.text and "v2" in page.text and "current" in page.text
    assert '<span class="d-add">' in page.text and "orders-v2" in page.text
    fragment = await client.get(f"/workflows/{created['id']}/versions?from=1&to=1", headers=HTMX)
    assert fragment.text.startswith('<section id="diff"') and "Only one version" in fragment.text
    restored = await client.post(f"/workflows/{created['id']}/versions/1/restore", headers=HTMX)
    assert restored.headers["hx-redirect"] == f"/workflows/{created['id']}"
    current = (await client.get(f"/api/v1/workflows/{created['id']}")).json()
    assert current["version"] == 3 and current["document"] == ORDERS


async def test_editor_page_embeds_the_document_and_the_node_types(client: Client) -> None:
    document = {**ORDERS, "description": "</script><script>alert(1)</script>"}
    created = await create(client, document)
    page = await client.get(f"/workflows/{created['id']}")
    assert f'data-workflow-id="{created["id"]}"' in page.text
    start = page.text.index('<script type="application/json" id="doc-data">') + 46
    embedded = page.text[start : page.text.index("</script>", start)]
    assert json.loads(embedded) == document  # key order kept, "</script>" escaped
    assert "</script><script>alert" not in page.text
    start = page.text.index('id="catalog-data">') + 18
    catalog = json.loads(page.text[start : page.text.index("</script>", start)])
    assert {"webhook", "if", "set"} <= {entry["type"] for entry in catalog}
    assert 'data-type="webhook"' in page.text  # in the palette
    new = await client.get("/workflows/new")
    assert 'data-workflow-id=""' in new.text and "My workflow" in new.text


async def test_unknown_workflow_is_an_html_404(client: Client) -> None:
    page = await client.get("/workflows/01NOPE")
    assert page.status_code == 404 and "<!doctype html>" in page.text
    assert "no workflow with id" in page.text
    fragment = await client.get("/workflows/01NOPE/versions", headers=HTMX)
    assert fragment.status_code == 404 and "<html" not in fragment.text
    assert fragment.headers["hx-retarget"] == "#flash"


async def test_panel_of_a_node(client: Client) -> None:
    node = {"name": "Tag", "type": "set", "parameters": {"fields": {"a": "{{ json.x }}"}}}
    response = await client.post("/editor/panel", data={"node": json.dumps(node)}, headers=HTMX)
    assert response.status_code == 200
    assert 'data-node="Tag"' in response.text and 'data-p="fields" data-k="map"' in response.text
    assert 'value="{{ json.x }}"' in response.text
    unknown = await client.post(
        "/editor/panel", data={"node": json.dumps({"name": "X", "type": "nope"})}, headers=HTMX
    )
    assert unknown.status_code == 404 and "unknown node type" in unknown.text


async def test_expression_preview(client: Client) -> None:
    items = json.dumps([{"json": {"total": 120}}, {"json": {"total": 5}}])

    async def preview(value: str, index: int = 0) -> str:
        response = await client.post(
            "/editor/preview", data={"value": value, "items": items, "index": str(index)}
        )
        return response.text

    assert '<span class="pv-value">240</span>' in await preview("{{ json.total * 2 }}")
    assert '<span class="pv-value">small</span>' in await preview(
        "{{ 'big' if json.total > 100 else 'small' }}", 1
    )
    assert "total: 120 of 2" in await preview("total: {{ json.total }} of {{ len(items) }}")
    refused = await preview("{{ __import__('os').system('id') }}")
    assert "pv-error" in refused
    assert "pv-error" in await preview("{{ json.total + }}")
    items = "[]"
    assert "No input yet" in await preview("{{ json.body.total > 1 }}")
    assert '<span class="pv-value">3</span>' in await preview("{{ 1 + 2 }}")


async def test_draft_run_runs_the_unsaved_document(client: Client) -> None:
    created = await create(client)
    draft = copy.deepcopy(ORDERS)
    draft["nodes"][2]["parameters"]["fields"] = {
        "priority": "{{ 'high' if json.body.total > 1000 else 'normal' }}"
    }
    response = await client.post(
        "/editor/run",
        json={"document": draft, "workflow_id": created["id"], "items": {"body": {"total": 500}}},
    )
    assert response.status_code == 202, response.text
    started = response.json()
    assert started["events"] == f"/api/v1/executions/{started['id']}/events"
    record = await finished(client, started["id"])
    assert record["status"] == "success" and record["mode"] == "manual"
    assert record["workflow"] == {"id": created["id"], "name": "Order alerts", "version": 1}
    output = record["nodes"]["Tag"]["runs"][0]["outputs"]["main"]
    assert output[0]["json"]["priority"] == "normal"
    stored = (await client.get(f"/api/v1/workflows/{created['id']}")).json()
    assert stored["version"] == 1 and stored["document"] == ORDERS  # the draft was not saved


async def test_run_to_a_node_and_pinned_data(client: Client) -> None:
    created = await create(client)
    draft = copy.deepcopy(ORDERS)
    draft["pinned"] = {"Incoming": [{"json": {"body": {"total": 7}}}]}
    started = await client.post(
        "/editor/run", json={"document": draft, "workflow_id": created["id"], "until": "Big?"}
    )
    record = await finished(client, started.json()["id"])
    assert set(record["nodes"]) == {"Incoming", "Big?"}
    assert record["nodes"]["Incoming"]["runs"][0]["pinned"] is True
    assert record["nodes"]["Big?"]["runs"][0]["outputs"]["false"][0]["json"]["body"]["total"] == 7


async def test_draft_run_of_an_invalid_document_lists_the_problems(client: Client) -> None:
    created = await create(client)
    draft = {"name": "Bad", "nodes": [{"name": "A", "type": "webhook"}]}
    response = await client.post(
        "/editor/run", json={"document": draft, "workflow_id": created["id"]}
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert any("path" in p["location"] for p in response.json()["problems"])


async def test_data_panel_pages_outputs_and_shows_inputs(client: Client) -> None:
    items = [{"n": i} for i in range(120)]
    document = {
        "name": "many",
        "nodes": [
            {"name": "Start", "type": "manual_trigger"},
            {
                "name": "Keep",
                "type": "filter",
                "parameters": {"condition": "{{ json.n % 2 == 0 }}"},
            },
        ],
        "connections": [{"from": "Start", "to": "Keep"}],
    }
    created = await create(client, document)
    started = await client.post(
        "/editor/run", json={"document": document, "workflow_id": created["id"], "items": items}
    )
    execution = started.json()["id"]
    await finished(client, execution)
    url = f"/editor/data?execution={execution}&node=Keep"
    first = (await client.get(url, headers=HTMX)).text
    assert "items 1\u201350 of 60" in first and "kept (60)" in first and "discarded (60)" in first
    assert "<td>98</td>" not in first and "Next" in first
    second = (await client.get(url + "&offset=50", headers=HTMX)).text
    assert "items 51\u201360 of 60" in second and '<td title="118">118</td>' in second
    discarded = (await client.get(url + "&output=discarded&view=json", headers=HTMX)).text
    assert '<pre class="code json">' in discarded and "&#34;n&#34;: 1" in discarded
    sources = json.dumps([["Start", "main"]])
    inputs = (
        await client.get(
            "/editor/data",
            params={"execution": execution, "node": "Keep", "side": "input", "sources": sources},
            headers=HTMX,
        )
    ).text
    assert "items 1\u201350 of 120" in inputs
    missing = (await client.get(f"/editor/data?execution={execution}&node=Nope")).text
    assert "did not run in this execution" in missing


async def test_executions_list_detail_retry_and_delete(client: Client) -> None:
    created = await create(client)
    run = await client.post(
        f"/api/v1/workflows/{created['id']}/run?wait=true", json={"items": {"body": {"total": 5}}}
    )
    execution = run.json()["id"]
    page = await client.get("/executions")
    assert "<!doctype html>" in page.text and f"/executions/{execution}" in page.text
    fragment = await client.get(
        f"/executions?status=error&workflow_id={created['id']}", headers=HTMX
    )
    assert "<html" not in fragment.text and f"/executions/{execution}" not in fragment.text
    detail = await client.get(f"/executions/{execution}")
    assert 'data-execution-id="' + execution + '"' in detail.text
    start = detail.text.index('id="status-data">') + 17
    statuses = json.loads(detail.text[start : detail.text.index("</script>", start)])
    assert statuses["Big?"] == {
        "status": "success",
        "items": {"true": 0, "false": 1},
        "error": None,
    }
    assert "Tag" not in statuses
    summary = await client.get(f"/executions/{execution}", headers=HTMX)
    assert summary.text.startswith('<header id="ex-summary"')

    retried = await client.post(
        f"/executions/{execution}/retry", data={"from": "start"}, headers=HTMX
    )
    new_id = retried.headers["hx-redirect"].rsplit("/", 1)[1]
    assert (await finished(client, new_id))["mode"] == "retry"
    not_running = await client.post(f"/executions/{execution}/cancel", headers=HTMX)
    assert not_running.status_code == 409 and "is not running" in not_running.text

    for _ in range(100):  # a finished execution can be deleted once its record is stored
        from_list = await client.delete(f"/executions/{new_id}", headers=HTMX)
        if "is running" not in from_list.text:
            break
        await asyncio.sleep(0.02)
    assert from_list.status_code == 200 and from_list.text == ""
    from_detail = await client.delete(
        f"/executions/{execution}",
        headers={**HTMX, "HX-Current-URL": f"http://x/executions/{execution}"},
    )
    assert from_detail.headers["hx-redirect"] == "/executions"
    assert (await client.get(f"/api/v1/executions/{execution}")).status_code == 404


async def test_cancel_a_running_execution(client: Client) -> None:
    document = {
        "name": "slow",
        "nodes": [
            {"name": "Start", "type": "manual_trigger"},
            {"name": "Wait", "type": "wait", "parameters": {"seconds": 30}},
        ],
        "connections": [{"from": "Start", "to": "Wait"}],
    }
    created = await create(client, document)
    run = await client.post(f"/api/v1/workflows/{created['id']}/run")
    execution = run.json()["id"]
    page = await client.get(f"/executions/{execution}")
    assert 'data-running="true"' in page.text and "Cancel" in page.text
    canceled = await client.post(f"/executions/{execution}/cancel", headers=HTMX)
    assert canceled.status_code == 200
    assert (await finished(client, execution))["status"] == "canceled"


async def test_activation_from_the_list_registers_the_webhook(client: Client) -> None:
    created = await create(client)
    await client.post(f"/workflows/{created['id']}/active", data={"active": "true"}, headers=HTMX)
    answer = await client.post("/webhook/orders", json={"total": 500})
    assert answer.status_code == 200
    page = (await client.get(f"/api/v1/executions?workflow_id={created['id']}")).json()
    assert [e["mode"] for e in page["data"]] == ["webhook"]

    other = await create(client, {**ORDERS, "name": "Same path"})
    refused = await client.post(
        f"/workflows/{other['id']}/active", data={"active": "true"}, headers=HTMX
    )
    assert refused.status_code == 409 and refused.headers["hx-retarget"] == "#flash"
    assert "Order alerts" in refused.text and 'aria-label="Dismiss"' in refused.text
    assert (await client.get(f"/api/v1/workflows/{other['id']}")).json()["active"] is False

    await client.delete(f"/workflows/{created['id']}", headers=HTMX)
    assert (await client.post("/webhook/orders", json={})).status_code == 404


async def test_schedule_nodes_show_their_next_run(client: Client) -> None:
    document = {
        "name": "Daily",
        "settings": {"timezone": "Europe/Berlin"},
        "nodes": [
            {
                "name": "Every morning",
                "type": "schedule_trigger",
                "parameters": {"cron": "0 9 * * *"},
            },
            {"name": "Log", "type": "noop"},
        ],
        "connections": [{"from": "Every morning", "to": "Log"}],
    }
    created = await create(client, document)
    page = (await client.get(f"/workflows/{created['id']}")).text
    start = page.index('id="hints-data">') + 16
    hints = json.loads(page[start : page.index("</script>", start)])
    assert list(hints) == ["Every morning"]
    assert hints["Every morning"].startswith("next ") and "09:00 CE" in hints["Every morning"]

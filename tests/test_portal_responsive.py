"""Every portal page at a phone's width (375 px) and a laptop's (1280 px), in a real browser.

Headless Chromium (Debian's, launched as in test_portal_browser.py) against a real
`deskcorder serve`: an employee and an admin open each of their pages at both
widths; no page is wider than the window (tables scroll inside their own box or
reflow), chart labels stay readable, the audit log's details unfold to formatted
JSON, and the dataset card is rendered Markdown with the HTML in it shown as text.
Screenshots go to test-artifacts/portal-responsive/.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

import pytest

from deskcorder.store import EventStore

from .helpers import enrol, start_collector
from .test_portal_auth import portal_cli, post_events, typing_events
from .test_portal_browser import browser, log_in  # noqa: F401  (browser is a fixture)

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "portal-responsive"
PASSWORDS = {"alice": "alice-responsive-password", "ops": "ops-responsive-password"}
PEOPLE = ["alice", "bob", "carol", "dave", "erin"]  # five, so the activity table is shown, not suppressed
WIDTHS = [375, 1280]
EMPLOYEE_PAGES = ["/me", "/me/sessions", "/me/sessions/sess-alice-1", "/me/erase"]
ADMIN_PAGES = ["/admin", "/admin/policy", "/admin/activity", "/admin/datasets", "/admin/datasets/{card}",
               "/admin/audit"]
LONG_PATH = "/srv/deskcorder/datasets/" + "very-long-folder-name-" * 6 + "final"
CARD = f"""\
---
configs:
- config_name: actions
  data_files: "{LONG_PATH}/data/actions/*.parquet"
---
# Deskcorder dataset

Files: `{LONG_PATH}/data/actions/train-00000.parquet` and a line that goes on {"and on " * 40}to the end.

<script>alert("raw html")</script>

## Contents

| | value |
|---|---|
| raw events | 1234 |
| a very long row label that would not fit a phone screen at all | {LONG_PATH} |
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("portal-responsive")
    data_dir, out = root / "data", root / "dataset"
    out.mkdir()
    (out / "README.md").write_text(CARD)
    with EventStore(data_dir) as store:
        for handle in PEOPLE:
            enrol(store, handle, f"device-{handle}-with-a-long-hostname-part")
        store.audit("dataset-builder", "dataset.build", "dataset", "responsive test build",
                    {"out": str(out), "policy_version": 1, "mode": "internal", "people": 5,
                     "actions_by_kind": {"type": 5, "click": 5}, "redactions": {"EMAIL": 1}})
        for i in range(20):  # an audit log as long as the one the issue measured, with long details
            store.audit("ops", "note.test", f"employee:{'e' * 40}{i}", "filler",
                        {"path": LONG_PATH, "counts": {"a": i, "b": [1, 2, 3]}, "marker": f"detail-{i}"})
        card = store.audit_entries(action="dataset.build")[-1].id
    for args, login in [(("set-password", "alice"), "alice"), (("add-admin", "ops"), "ops")]:
        result = portal_cli(data_dir, *args, password=PASSWORDS[login])
        assert result.returncode == 0, result.stderr
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with start_collector(data_dir) as url:
        for handle in PEOPLE:
            post_events(url, f"batch-{handle}-1", f"device-{handle}-with-a-long-hostname-part",
                        typing_events(f"sess-{handle}-1", f"{handle} wrote " + "a-long-unbroken-word" * 8,
                                      "notes.txt"))
        yield {"url": url, "card": card}


def overflow(page: Any) -> dict[str, int]:
    return page.evaluate("() => ({scroll: document.documentElement.scrollWidth, inner: window.innerWidth,"
                         " height: document.documentElement.scrollHeight,"
                         " audit_rows: document.querySelectorAll('#audit tbody tr').length})")


def smallest_chart_label_px(page: Any) -> float:
    """The rendered height of the smallest text in any chart (CSS px), or 99 when the page has no chart."""
    return page.evaluate("""() => Math.min(99, ...[...document.querySelectorAll('svg.chart text')]
                              .map(t => t.getBoundingClientRect().height).filter(h => h > 0))""")


def page_kind(path: str) -> tuple[str, frozenset[str]]:
    """A page's route and the names of its query fields: one visit each (not one per day or per filter)."""
    route, _, query = path.partition("?")
    return route, frozenset(field.partition("=")[0] for field in query.split("&") if field)


def visit_every_page(browser: Any, url: str, login: str, pages: list[str]) -> dict[tuple[str, int], dict[str, int]]:
    """Open ``pages`` and every page of the same area they link to (new pages are found without a list)."""
    area = "/" + pages[0].strip("/").split("/")[0]
    seen = {}
    for width in WIDTHS:
        context = browser.new_context(viewport={"width": width, "height": 800})
        page = context.new_page()
        try:
            log_in(page, url, login, PASSWORDS[login], pages[0])
            queue, kinds = list(pages), {page_kind(p) for p in pages}
            while queue:
                path = queue.pop(0)
                page.goto(url + path)
                assert page.url == url + path, f"{path} redirected to {page.url}"
                for link in page.eval_on_selector_all("a[href^='/']", "links => links.map(a => a.getAttribute('href'))"):
                    if (link == area or link.startswith(area + "/") or link.startswith(area + "?")) \
                            and page_kind(link) not in kinds and "/api/" not in link and len(kinds) < 30:
                        kinds.add(page_kind(link))
                        queue.append(link)
                name = re.sub(r"[^a-z0-9]+", "-", path.strip("/")) or "root"
                page.screenshot(path=ARTIFACTS / f"{name}-{width}.png", full_page=True)
                seen[path, width] = size = overflow(page)
                assert size["scroll"] <= size["inner"], f"{path} at {width} px is {size['scroll']} px wide"
                assert smallest_chart_label_px(page) >= 9, f"{path} at {width} px has chart labels under 9 px"
        finally:
            context.close()
    return seen


def test_every_employee_page_fits_a_phone_and_a_laptop(browser: Any, server: dict[str, Any]) -> None:
    seen = visit_every_page(browser, server["url"], "alice", EMPLOYEE_PAGES)
    print({f"{p}@{w}": s["scroll"] for (p, w), s in seen.items()})
    assert len(seen) >= 2 * len(EMPLOYEE_PAGES)


def test_every_admin_page_fits_a_phone_and_a_laptop(browser: Any, server: dict[str, Any]) -> None:
    pages = [p.format(card=server["card"]) for p in ADMIN_PAGES]
    seen = visit_every_page(browser, server["url"], "ops", pages)
    print({f"{p}@{w}": (s["scroll"], s["height"]) for (p, w), s in seen.items()})
    # With the details folded an entry takes a few lines, not the 435 px each the unfolded JSON took.
    audit = seen["/admin/audit", 375]
    assert audit["audit_rows"] >= 21 and audit["height"] / audit["audit_rows"] < 150


def test_an_admin_reads_an_audit_entrys_details_a_rendered_dataset_card_and_a_labelled_policy(
        browser: Any, server: dict[str, Any]) -> None:
    url = server["url"]
    context = browser.new_context(viewport={"width": 375, "height": 800})
    page = context.new_page()
    try:
        log_in(page, url, "ops", PASSWORDS["ops"], "/admin/audit")
        entry = page.locator("#audit tr", has_text="detail-7")
        assert not entry.locator("pre.json").is_visible()  # folded until asked for
        entry.locator("details summary").click()
        details = entry.locator("pre.json")
        assert details.is_visible() and '"marker": "detail-7"' in details.inner_text()  # formatted, one key a line
        assert details.bounding_box()["width"] <= 375
        page.screenshot(path=ARTIFACTS / "audit-details-open-375.png")  # the screen the admin reads it on

        page.goto(url + f"/admin/datasets/{server['card']}")
        card = page.locator("#card-text")
        assert card.locator("h1").inner_text() == "Deskcorder dataset"  # a heading, not '# ...'
        assert card.locator(".markdown h2").inner_text() == "Contents"
        assert "# Deskcorder" not in card.inner_text()
        assert card.locator("table td", has_text="1234").count() == 1  # the Markdown table is a table
        assert card.locator("script").count() == 0  # raw HTML in the card is shown as text, never run
        assert '<script>alert("raw html")</script>' in card.inner_text()
        card.locator("details summary").click()  # the YAML header, folded
        assert "config_name: actions" in card.locator("details pre").inner_text()
        page.screenshot(path=ARTIFACTS / "dataset-card-375.png", full_page=True)

        page.goto(url + "/admin/policy")  # the policy editor is found by its label, as a screen reader finds it
        assert page.get_by_label("Policy text (TOML)").input_value().startswith("version = ")
    finally:
        context.close()

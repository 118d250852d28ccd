"""The portal's everyday flows, end to end in a real browser (Debian's Chromium, as in test_portal_browser.py)
against a real `deskcorder serve`, then checked in the raw files.

Alice is recorded on two UTC days of one week: on the first a session typing KEEPMARKER; on the second a
session typing GONEMARKER and a long session of 77 rows (two pages). On a 375 px phone she walks her
timeline (a day, the next, back, the week), opens the long session's page 2, deletes the GONEMARKER session
from her sessions list and is told how many events went; it is gone from the list and the timeline while
the other two stay; she then names her time zone and the day follows it. No file under the data dir holds
GONEMARKER (every byte read raw, and every event file decrypted, where KEEPMARKER still is), and a dataset
built afterwards (``build_from_store``) holds KEEPMARKER and not GONEMARKER. An admin reads the deletion's
audit entry in its fold and opens that build's card rendered as HTML. Every page visited is no wider than
the phone's window, the charts' labels are readable and apart; the same pages are then seen at 1280 px.
Screenshots: test-artifacts/portal-flows/.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, Iterator

import pyarrow.parquet as pq
import pytest

from deskcorder.dataset import BuildOptions, build_from_store
from deskcorder.events import EventKind
from deskcorder.store import EventStore
from deskcorder.store._events._layout import read_parquet

from .helpers import TEST_ACTOR, decrypted_file, enrol, start_collector
from .privacy_rig import disk_bytes
from .test_portal_browser import browser  # noqa: F401  (the fixture, reused)
from .test_portal_browser import log_in
from .test_portal_timeline import SKEW_S, Recording, at, post, two_days

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "portal-flows"
PASSWORDS = {"alice": "alice-flows-password", "ops": "ops-flows-password"}
KEEP, GONE = "KEEPMARKER-FLOW-111", "GONEMARKER-FLOW-222"
PHONE, LAPTOP = 375, 1280


def typed_session(session: str, t0: int, app: str, marker: str) -> Recording:
    """``marker`` typed into a window titled ``marker`` (the title keeps it whole in the raw files; the typing
    is one character per event)."""
    r = Recording(session, t0)
    r.focus(0, app, marker)
    r.type(1, marker)
    r.add(5, EventKind.BUTTON_DOWN, button="left", x=5, y=5)
    return r


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("portal-flows")
    data_dir = root / "data"
    with EventStore(data_dir) as store:  # accounts made in-process, as `deskcorder portal` does (a start less)
        enrol(store, "alice", "device-alice")
        store.portal.set_password("alice", PASSWORDS["alice"], role="employee", actor=TEST_ACTOR)
        store.portal.set_password("ops", PASSWORDS["ops"], role="admin", actor=TEST_ACTOR)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    first, second = two_days()
    with start_collector(data_dir, "--max-clock-skew", str(SKEW_S)) as url:
        post(url, "device-alice", typed_session("sess-keep", at(first, 9), "Editor", KEEP))
        gone = typed_session("sess-gone", at(second, 11), "Browser", GONE)
        post(url, "device-alice", gone)
        long = Recording("sess-long", at(second, 16))  # 70 lines, a new window every 10: 77 rows, 2 pages
        t = 0.0
        for i in range(70):
            if i % 10 == 0:
                long.focus(t, "Notes", f"file-{i // 10}.txt")
            t = long.type(t + 0.5, f"line {i:03d}")
        post(url, "device-alice", long)
        yield {"url": url, "data_dir": data_dir, "out": root / "dataset", "first": first, "second": second,
               "gone_events": len(gone.events), "visited": {"alice": [], "ops": []}}


def looked_at(page: Any, portal: dict[str, Any], login: str, name: str) -> None:
    """Every page visited: no wider than the window, charts legible; a screenshot; noted for the 1280 px pass."""
    width = page.viewport_size["width"]
    size = page.evaluate("() => ({body: document.body.scrollWidth, inner: window.innerWidth})")
    assert size["body"] <= size["inner"], f"{page.url} at {width} px: the body is {size['body']} px wide"
    labels = page.evaluate("""() => [...document.querySelectorAll('svg.chart')].map(svg =>
                                [...svg.querySelectorAll('text')].map(t => {
                                    const b = t.getBoundingClientRect();
                                    return {tick: t.classList.contains('tick'), left: b.left, right: b.right,
                                            height: b.height}; }))""")
    for chart in labels:
        assert all(lb["height"] >= 9 for lb in chart), f"{page.url} at {width} px: chart text under 9 px"
        ticks = sorted((lb for lb in chart if lb["tick"]), key=lambda lb: lb["left"])  # under the bars
        assert all(a["right"] <= b["left"] for a, b in zip(ticks, ticks[1:])), f"{page.url}: chart labels overlap"
    page.screenshot(path=ARTIFACTS / f"{name}-{width}.png", full_page=True)
    if width == PHONE:
        portal["visited"][login].append((name, page.url))


def test_an_employee_walks_her_days_opens_page_2_and_deletes_one_session(browser: Any,
                                                                        portal: dict[str, Any]) -> None:
    url, first, second = portal["url"], portal["first"], portal["second"]
    context = browser.new_context(viewport={"width": PHONE, "height": 800})
    page = context.new_page()
    try:
        log_in(page, url, "alice", PASSWORDS["alice"], f"/me/timeline?day={first}")
        assert page.locator("svg.chart rect.bar").count() == 24 and "Editor" in page.inner_text("#app-time")
        looked_at(page, portal, "alice", "timeline-day-1")
        page.click("#next")
        page.wait_for_url(f"**/me/timeline?day={second}")
        assert "Notes" in page.inner_text("#app-time") and "Editor" not in page.inner_text("#app-time")
        assert page.locator("#span-sessions li").count() == 2  # the session to delete and the long one
        looked_at(page, portal, "alice", "timeline-day-2")
        page.click("#previous")
        page.wait_for_url(f"**/me/timeline?day={first}")
        page.click("#week-view")
        page.wait_for_url("**view=week")
        assert page.locator("svg.chart rect.bar").count() == 7
        assert {"Editor", "Browser", "Notes"} <= set(page.inner_text("#app-time").split())  # both days
        looked_at(page, portal, "alice", "timeline-week")

        page.click("#span-sessions a >> text=16:00:00")  # the long session, from the week's list
        page.wait_for_url("**/me/sessions/sess-long")
        assert "Page 1 of 2" in page.inner_text("nav.pager >> nth=0")
        page.click("nav.pager >> nth=0 >> a.page-next")
        page.wait_for_url("**/me/sessions/sess-long?page=2")
        assert "Page 2 of 2" in page.inner_text("nav.pager >> nth=0")
        typed = page.inner_text("#typed")
        assert "line 069" in typed and "line 000" not in typed
        looked_at(page, portal, "alice", "session-page-2")

        page.click("header nav >> text=My sessions")
        page.wait_for_url("**/me/sessions")
        assert page.locator("#sessions tbody tr").count() == 3
        looked_at(page, portal, "alice", "sessions-before")
        page.click("#sessions tr:has(a[href='/me/sessions/sess-gone']) button.danger")
        page.wait_for_url("**/me/sessions?deleted=*")
        assert page.url.endswith(f"?deleted={portal['gone_events']}")
        assert f"Deleted: {portal['gone_events']} events." in page.inner_text("#deleted")
        links = page.eval_on_selector_all("#sessions a", "as => as.map(a => a.getAttribute('href'))")
        assert sorted(links) == ["/me/sessions/sess-keep", "/me/sessions/sess-long"]
        looked_at(page, portal, "alice", "sessions-after-deletion")
        page.goto(f"{url}/me/timeline?day={second}")
        assert page.locator("#span-sessions li").count() == 1 and "Browser" not in page.inner_text("#app-time")
        looked_at(page, portal, "alice", "timeline-day-2-after-deletion")
        page.fill("#tz", "Asia/Tokyo")  # her own time zone, named on the page (it runs no script to ask)
        page.click("nav.timeline-nav button[type=submit]")
        page.wait_for_url("**tz=Asia%2FTokyo")
        assert "(Asia/Tokyo)" in page.inner_text("h1")
        page.click("#next")  # 16:00 UTC is 01:00 the next day in Tokyo; the link keeps the zone
        page.wait_for_url(f"**day={second + dt.timedelta(days=1)}&tz=Asia/Tokyo")
        assert "01:00:00 JST" in page.inner_text("#span-sessions")
        looked_at(page, portal, "alice", "timeline-in-tokyo")
    finally:
        context.close()

    # The raw files: GONEMARKER in no byte under the data dir; in no decrypted event file, neither as the
    # title nor as the characters typed (KEEPMARKER is, both ways: the control that looking inside works).
    data_dir = portal["data_dir"]
    assert GONE.encode() not in disk_bytes(data_dir)
    with EventStore(data_dir) as store:
        plain = [decrypted_file(store, p.relative_to(data_dir).as_posix())
                 for p in (data_dir / "events").rglob("*.parquet")]
        typed = ["".join(c or "" for c in read_parquet(p).column("char").to_pylist())  # the file's own reader
                 for p in plain]
        assert not any(GONE.encode() in p for p in plain) and not any(GONE in t for t in typed)
        assert any(KEEP.encode() in p for p in plain) and any(KEEP in t for t in typed)
        build_from_store(store, portal["out"], actor=TEST_ACTOR, purpose="dataset after a selective deletion",
                         options=BuildOptions(mode="internal"))
    dataset = b"".join(p.read_bytes() for p in portal["out"].rglob("*") if p.is_file())
    assert GONE.split("-")[0].encode() not in dataset
    assert KEEP.split("-")[0].encode() in dataset  # the control: a kept marker does reach the dataset
    actions = [str(a) for p in portal["out"].glob("data/actions/*.parquet") for a in pq.read_table(p).to_pylist()]
    assert any(KEEP in a for a in actions) and not any(GONE.split("-")[0] in a for a in actions)  # every split


def test_an_admin_reads_the_deletions_audit_entry_and_the_rendered_card_of_the_build_after_it(
        browser: Any, portal: dict[str, Any]) -> None:
    assert portal["out"].exists(), "run with the employee's test first: the admin reads what it left"
    url = portal["url"]
    context = browser.new_context(viewport={"width": PHONE, "height": 800})
    page = context.new_page()
    try:
        log_in(page, url, "ops", PASSWORDS["ops"], "/admin/audit")
        entry = page.locator("#audit tbody tr", has_text="events.delete")
        assert entry.count() == 1 and not entry.locator("pre.json").is_visible()  # folded until asked for
        entry.locator("details summary").click()
        details = entry.locator("pre.json")
        assert details.is_visible() and '"session": "sess-gone"' in details.inner_text()
        assert details.bounding_box()["width"] <= PHONE
        looked_at(page, portal, "ops", "audit-deletion-details")

        page.click("header nav >> text=Datasets")
        page.wait_for_url("**/admin/datasets")
        looked_at(page, portal, "ops", "datasets")
        page.click("#datasets a")  # the one build: the one after the deletion
        page.wait_for_url(re.compile(r".*/admin/datasets/\d+$"))
        card = page.locator("#card-text .markdown")
        assert card.locator("h1").inner_text() == "Deskcorder dataset"  # a heading, not "# ..."
        assert "Contents" in card.locator("h2").all_inner_texts()
        assert "raw events" in card.locator("table td").all_inner_texts()  # a Markdown table is a table
        text = card.inner_text()
        assert "# Deskcorder" not in text and "|---" not in text and "internal build" in text
        looked_at(page, portal, "ops", "dataset-card")
    finally:
        context.close()


def test_the_same_pages_fit_a_laptop(browser: Any, portal: dict[str, Any]) -> None:
    visited = portal["visited"]
    assert visited["alice"] and visited["ops"], "run with the two tests above: this one revisits their pages"
    for login, pages in visited.items():
        context = browser.new_context(viewport={"width": LAPTOP, "height": 900})
        page = context.new_page()
        try:
            log_in(page, portal["url"], login, PASSWORDS[login], pages[0][1].removeprefix(portal["url"]))
            for name, where in pages:
                page.goto(where)
                if name == "audit-deletion-details":
                    page.locator("#audit tbody tr", has_text="events.delete").locator("details summary").click()
                looked_at(page, portal, login, name)
        finally:
            context.close()

"""An employee's timeline (a day or a week: time per application, actions per hour) and a long session page by
page, over real HTTP against a real `deskcorder serve`.

Alice is recorded on two UTC days of one week: on the first, 60 s in Editor then 30 s in Browser; on the
second, 120 s in Editor. Each day's page shows its own per-app time and actions per hour, its "next day"
link leads to the other, and the week sums both. A long session of hers is cut into pages of rows, with the
redaction sentence of the whole session on every page; bob, logged in, sees none of it. In a real browser
(Debian's Chromium, as in test_portal_browser.py), alice walks from one day to the next and to the week, and
opens her long session on page 2, at 1280 and 375 px wide; screenshots go to test-artifacts/portal/.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any, Iterator

import httpx
import pytest

from deskcorder.collect._portal._timeline import PAGE_SIZE, activity
from deskcorder.events import Event, EventKind, columns_to_table, events_to_columns
from deskcorder.store import EventStore

from .helpers import enrol, next_utc_midnight_ns, start_collector
from .test_portal_auth import log_in, portal_cli, post_events
from .test_portal_browser import ARTIFACTS, browser  # noqa: F401  (browser: the fixture, reused)
from .test_portal_browser import log_in as browser_log_in

PASSWORD = {"alice": "alice-timeline-password", "bob": "bob-timeline-password"}
S = 1_000_000_000
SKEW_S = 4 * 86400  # the second day may be up to three days ahead of now: events follow the consent given now


def two_days() -> tuple[dt.date, dt.date]:
    """Two consecutive future UTC days of the same ISO week (never Sunday then Monday)."""
    first = dt.datetime.fromtimestamp(next_utc_midnight_ns() / S, dt.timezone.utc).date()
    if first.weekday() == 6:
        first += dt.timedelta(days=1)
    return first, first + dt.timedelta(days=1)


def at(day: dt.date, hour: int) -> int:
    return int(dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.timezone.utc).timestamp()) * S


class Recording:
    """Events of one session, stamped at given seconds from its start."""

    def __init__(self, session: str, t0: int) -> None:
        self.session, self.t0, self.events = session, t0, []  # type: tuple[str, int, list[Event]]

    def add(self, second: float, kind: EventKind, **fields: Any) -> None:
        seq = len(self.events)
        t = int(second * S)
        self.events.append(Event(self.session, seq, t, self.t0 + t, kind, **fields))

    def focus(self, second: float, app: str, title: str) -> None:
        self.add(second, EventKind.FOCUS, app_class=app, app_process=app.lower(), window_title=title)

    def type(self, second: float, text: str, gap: float = 0.01) -> float:
        for ch in text:
            self.add(second, EventKind.KEY_DOWN, key=ch, char=ch)
            self.add(second + gap / 2, EventKind.KEY_UP, key=ch)
            second += gap
        self.add(second, EventKind.KEY_DOWN, key="enter")
        return second + gap


def post(url: str, device: str, recording: Recording) -> None:
    for i in range(0, len(recording.events), 500):
        post_events(url, f"batch-{recording.session}-{i}", device, recording.events[i:i + 500])


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("timeline") / "data"
    with EventStore(data_dir) as store:
        enrol(store, "alice", "device-alice")
        enrol(store, "bob", "device-bob")
    for handle in PASSWORD:
        assert portal_cli(data_dir, "set-password", handle, password=PASSWORD[handle]).returncode == 0
    first, second = two_days()
    with start_collector(data_dir, "--max-clock-skew", str(SKEW_S)) as url:
        day1 = Recording("sess-day1", at(first, 9))  # 09:00: Editor 60 s (5 keys), then Browser 30 s (2 clicks)
        day1.focus(0, "Editor", "notes")
        day1.type(1, "abcd")
        day1.focus(60, "Browser", "news")
        day1.add(70, EventKind.BUTTON_DOWN, button="left", x=1, y=1)
        day1.add(80, EventKind.BUTTON_DOWN, button="left", x=2, y=2)
        day1.add(90, EventKind.MOVE, x=3, y=3)
        post(url, "device-alice", day1)
        day2 = Recording("sess-day2", at(second, 14))  # 14:00: Editor 120 s, 3 keys and a scroll
        day2.focus(0, "Editor", "draft")
        day2.type(10, "hi")
        day2.add(120, EventKind.SCROLL, x=4, y=4, dx=0, dy=-1)
        post(url, "device-alice", day2)
        long = Recording("sess-long", at(second, 16))  # 150 lines typed in Notes, a new window every 10: 165 rows
        t = 0.0
        for i in range(150):
            if i % 10 == 0:
                long.focus(t, "Notes", f"file-{i // 10}.txt")
            t = long.type(t + 0.5, f"line {i:03d}" + (" mail ann@example.org" if i == 100 else ""))
        post(url, "device-alice", long)
        post(url, "device-bob", _bob(at(first, 9)))
        yield {"url": url, "first": first, "second": second,
               "alice": log_in(url, "alice", PASSWORD["alice"]), "bob": log_in(url, "bob", PASSWORD["bob"])}


def _bob(t0: int) -> Recording:
    bob = Recording("sess-bob", t0)
    bob.focus(0, "BobsApp", "bob-only-title")
    bob.type(1, "bob-typed-marker")
    return bob


def rows(page: str, table_id: str) -> dict[str, str]:
    """The first two cells of each body row of a table, as {first: second}."""
    m = re.search(rf'<table id="{table_id}">.*?<tbody>(.*?)</tbody>', page, re.S)
    assert m, f"no table #{table_id}"
    cells = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td>", m.group(1), re.S)
    return {html.unescape(a): html.unescape(b) for a, b in cells}


def count_rows(page: str, table_id: str) -> int:
    m = re.search(rf'<table id="{table_id}">.*?<tbody>(.*?)</tbody>', page, re.S)
    return m.group(1).count("<tr>") if m else 0


def link(page: str, element_id: str) -> str:
    m = re.search(rf'id="{element_id}"[^>]*href="([^"]+)"', page)
    assert m, f"no link #{element_id}"
    return html.unescape(m.group(1))


def test_each_day_shows_its_time_per_application_and_actions_per_hour(portal: dict[str, Any]) -> None:
    first = portal["alice"].get(f"/me/timeline?day={portal['first']}")
    assert first.status_code == 200
    assert rows(first.text, "app-time") == {"Editor": "1 min 00 s", "Browser": "30 s"}
    assert rows(first.text, "actions-table") == {"09:00": "7"}  # 5 keys and 2 clicks; the move is no action
    assert 'aria-label="Actions per hour (UTC)"' in first.text and "<script" not in first.text
    second = portal["alice"].get(link(first.text, "next"))
    assert portal["second"].isoformat() in second.text
    assert rows(second.text, "app-time")["Editor"] == "2 min 00 s" and "Browser" not in rows(second.text, "app-time")
    assert list(rows(second.text, "app-time")) == ["Editor", "Notes"]  # longest first; the long session is Notes
    assert rows(second.text, "actions-table")["14:00"] == "4"
    assert portal["alice"].get(link(second.text, "previous")).text == first.text


def test_the_week_view_sums_both_days(portal: dict[str, Any]) -> None:
    day = portal["alice"].get(f"/me/timeline?day={portal['first']}")
    week = portal["alice"].get(link(day.text, "week-view"))
    assert week.status_code == 200
    apps = rows(week.text, "app-time")
    assert apps["Editor"] == "3 min 00 s" and apps["Browser"] == "30 s" and "Notes" in apps  # 60 s + 120 s
    per_day = rows(week.text, "actions-table")
    assert len(per_day) == 7
    assert per_day[f"{portal['first']:%a} {portal['first']}"] == "7"
    assert int(per_day[f"{portal['second']:%a} {portal['second']}"]) > 4  # day 2 and the long session


def test_time_in_front_across_midnight_counts_for_each_day_its_own_part() -> None:
    day = dt.date(2026, 3, 9)
    late = Recording("sess-late", at(day, 23) + 3540 * S)  # 23:59:00, in Editor until 00:01:00
    late.focus(0, "Editor", "late")
    late.type(30, "x")
    late.add(120, EventKind.BUTTON_DOWN, button="left", x=1, y=1)
    events = columns_to_table(events_to_columns(late.events))
    assert activity(events, day, 1).apps == [("Editor", 60.0)]
    assert activity(events, day + dt.timedelta(days=1), 1).apps == [("Editor", 60.0)]
    assert activity(events, day, 7).apps == [("Editor", 120.0)] and activity(events, day, 7).actions == 3
    assert dict(activity(events, day, 1).buckets)["23:00"] == 2  # "x" and enter; the click is the next day's


def test_a_bad_day_is_422_naming_the_field(portal: dict[str, Any]) -> None:
    r = portal["alice"].get("/me/timeline?day=2026-13-40")
    assert r.status_code == 422 and r.json()["field"] == "query.day"
    assert portal["alice"].get("/me/timeline?view=month").json()["field"] == "query.view"


def test_a_long_session_is_split_over_pages(portal: dict[str, Any]) -> None:
    alice = portal["alice"]
    one = alice.get("/me/sessions/sess-long")
    assert one.status_code == 200
    assert "Page 1 of 4" in one.text and count_rows(one.text, "typed") + count_rows(one.text, "windows") == PAGE_SIZE
    assert "line 000" in one.text and "line 060" not in one.text
    two_url = re.search(r'class="page-next" href="([^"]+)"', one.text).group(1)
    two = alice.get(f"/me/sessions/sess-long{html.unescape(two_url)}")
    assert two.status_code == 200 and "Page 2 of 4" in two.text
    assert "line 000" not in two.text and "line 050" in two.text
    three = alice.get("/me/sessions/sess-long?page=3").text
    # Line 100's address, marked as the dataset will have it.
    assert re.search(r'line 100 mail <mark class="redacted"[^>]*>&lt;EMAIL&gt;</mark>', three)
    for page in (one.text, two.text, three):  # the count is the whole session's, on every page
        assert "e-mail" in re.search(r'id="typed-replaced">(.*?)</p>', page, re.S).group(1)
    assert alice.get("/me/sessions/sess-long?page=5").status_code == 404
    for bad in ("0", "two", "-1"):
        r = alice.get(f"/me/sessions/sess-long?page={bad}")
        assert r.status_code == 422 and r.json()["field"] == "query.page", bad


def test_a_short_session_has_one_page_and_no_pager(portal: dict[str, Any]) -> None:
    page = portal["alice"].get("/me/sessions/sess-day1").text
    assert 'class="pager"' not in page and "abcd" in page


def test_another_person_sees_none_of_it(portal: dict[str, Any]) -> None:
    bob = portal["bob"]
    for day in (portal["first"], portal["second"]):
        for view in ("day", "week"):
            page = bob.get(f"/me/timeline?day={day}&view={view}").text
            assert not {"Editor", "Browser", "Notes", "sess-day", "sess-long"} & set(re.findall(r"[\w-]+", page))
    assert "BobsApp" in bob.get(f"/me/timeline?day={portal['first']}").text
    for path in ("/me/sessions/sess-long", "/me/sessions/sess-long?page=2", "/me/sessions/sess-day1"):
        assert bob.get(path).status_code == 404, path
    assert "bob-typed-marker" not in portal["alice"].get(f"/me/timeline?day={portal['first']}").text
    assert httpx.get(portal["url"] + "/me/timeline", headers={"Accept": "text/html"}).status_code == 303


@pytest.mark.parametrize("width", [1280, 375])
def test_in_the_browser_she_walks_the_days_and_opens_a_session_on_page_2(browser: Any, portal: dict[str, Any],
                                                                          width: int) -> None:
    url, first, second = portal["url"], portal["first"], portal["second"]
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        browser_log_in(page, url, "alice", PASSWORD["alice"], f"/me/timeline?day={first}")
        assert page.locator("svg.chart rect.bar").count() == 24
        assert "Browser" in page.inner_text("#app-time")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=ARTIFACTS / f"timeline-day-{width}.png", full_page=True)
        page.click("#next")
        page.wait_for_url(f"**/me/timeline?day={second}")
        assert "Browser" not in page.inner_text("#app-time") and "Notes" in page.inner_text("#app-time")
        page.click("#week-view")
        page.wait_for_url("**view=week")
        assert page.locator("svg.chart rect.bar").count() == 7 and "Browser" in page.inner_text("#app-time")
        assert page.evaluate("document.body.scrollWidth <= window.innerWidth"), "the week page overflows"
        page.screenshot(path=ARTIFACTS / f"timeline-week-{width}.png", full_page=True)
        page.click("#span-sessions a >> text=16:00:00")  # the long session, from the week's list
        page.wait_for_url("**/me/sessions/sess-long")
        page.click("nav.pager >> nth=0 >> a.page-next")
        page.wait_for_url("**/me/sessions/sess-long?page=2")
        assert "Page 2 of 4" in page.inner_text("nav.pager >> nth=0")
        assert "line 050" in page.inner_text("#typed") and "line 000" not in page.inner_text("#typed")
        assert page.evaluate("document.body.scrollWidth <= window.innerWidth"), "the session page overflows"
        page.screenshot(path=ARTIFACTS / f"timeline-session-page-2-{width}.png", full_page=True)
    finally:
        context.close()

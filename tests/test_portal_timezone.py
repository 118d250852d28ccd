"""The employee's timeline in the time zone they name (``?tz=``, an IANA name; UTC by default), over real HTTP
against a real `deskcorder serve`, and on the days the clocks change.

Alice works at 09:00 UTC on one day and at 16:00 UTC the next. In Asia/Tokyo (UTC+9, no DST) the first is
18:00 the same day and the second 01:00 the day after: the days, hours, session times and "days recorded"
follow the zone, and the previous/next/week links keep it. In Europe/Berlin, 25 October 2026 has 25 hours
(02:00 twice, told apart by CEST/CET) and 29 March 23. An unknown zone is a 422 naming query.tz.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any, Iterator

import pytest

from deskcorder.collect._portal._timeline import activity
from deskcorder.events import EventKind, columns_to_table, events_to_columns
from deskcorder.store import EventStore

from .helpers import enrol, start_collector
from .test_portal_auth import log_in
from .test_portal_timeline import SKEW_S, Recording, at, link, post, rows, two_days

PASSWORD = "alice-timezone-password"
TOKYO = "Asia/Tokyo"
S = 1_000_000_000


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("timezone") / "data"
    with EventStore(data_dir) as store:
        enrol(store, "alice", "device-alice")
        store.portal.set_password("alice", PASSWORD, role="employee", actor="tests")
    first, second = two_days()
    with start_collector(data_dir, "--max-clock-skew", str(SKEW_S)) as url:
        for session, t0, app in [("sess-morning", at(first, 9), "Editor"), ("sess-late", at(second, 16), "Notes")]:
            r = Recording(session, t0)
            r.focus(0, app, "work")
            r.type(1, "abc")  # 3 keys and enter: 4 actions
            post(url, "device-alice", r)
        yield {"url": url, "first": first, "second": second, "alice": log_in(url, "alice", PASSWORD)}


def test_days_hours_and_session_times_follow_the_named_zone(portal: dict[str, Any]) -> None:
    alice, first, second = portal["alice"], portal["first"], portal["second"]
    day = alice.get(f"/me/timeline?day={first}&tz={TOKYO}").text
    assert f"({TOKYO})</h1>" in day and f'aria-label="Actions per hour ({TOKYO})"' in day
    assert rows(day, "actions-table") == {"18:00": "4"}  # 09:00 UTC
    assert f"{first} 18:00:00 JST" in day and "Editor" in rows(day, "app-time")
    # 16:00 UTC on the second day is 01:00 the day after in Tokyo: not on the second day there.
    assert "Nothing was recorded in this day." in alice.get(f"/me/timeline?day={second}&tz={TOKYO}").text
    after = alice.get(link(day, "next")).text  # the links keep the zone
    assert link(day, "next") == f"/me/timeline?day={first + dt.timedelta(days=1)}&tz={TOKYO}"
    assert "Nothing was recorded in this day." in after
    third = alice.get(link(after, "next")).text
    assert rows(third, "actions-table") == {"01:00": "4"} and "Notes" in rows(third, "app-time")
    assert f"{second + dt.timedelta(days=1)} 01:00:00 JST" in third
    recorded = third.split('id="recorded-days"')[1].split("</p>")[0]
    assert str(first) in recorded and str(second + dt.timedelta(days=1)) in recorded and str(second) not in recorded
    week = alice.get(link(third, "week-view")).text
    assert link(third, "week-view").endswith(f"&view=week&tz={TOKYO}")
    assert f'value="{TOKYO}"' in week and "&amp;tz=Asia/Tokyo" in link_html(week, "previous")


def link_html(page: str, element_id: str) -> str:
    return page.split(f'id="{element_id}"')[1].split(">")[0]


def test_utc_stays_the_default(portal: dict[str, Any]) -> None:
    alice, second = portal["alice"], portal["second"]
    page = alice.get(f"/me/timeline?day={second}").text
    assert "(UTC)</h1>" in page and rows(page, "actions-table") == {"16:00": "4"} and "tz=" not in link(page, "next")
    assert f"{second} 16:00:00 UTC" in page
    assert alice.get(f"/me/timeline?day={second}&tz=UTC").text == page


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "../../../etc/passwd", "/usr/share/zoneinfo/UTC",
                                  "localtime", "", "Europe/" + "x" * 80])
def test_an_unknown_zone_is_422_naming_the_field(portal: dict[str, Any], zone: str) -> None:
    r = portal["alice"].get("/me/timeline", params={"tz": zone})
    assert r.status_code == 422 and r.json()["field"] == "query.tz", (zone, r.text)


def key_at(utc: dt.datetime) -> Any:
    r = Recording("s", int(utc.timestamp()) * S)
    r.add(0, EventKind.KEY_DOWN, key="a", char="a")
    return columns_to_table(events_to_columns(r.events))


def test_a_day_the_clocks_change_has_25_or_23_hours_each_named_with_its_offset() -> None:
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    autumn = activity(key_at(dt.datetime(2026, 10, 25, 1, 30, tzinfo=dt.timezone.utc)), dt.date(2026, 10, 25), 1,
                      berlin)
    labels = [label for label, _ in autumn.buckets]
    assert len(labels) == 25 and labels[2:4] == ["02:00 CEST", "02:00 CET"]
    assert dict(autumn.buckets)["02:00 CET"] == 1  # 01:30 UTC is 02:30 after the clocks went back
    spring = activity(key_at(dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.timezone.utc)), dt.date(2026, 3, 29), 1,
                      berlin)
    assert [label for label, _ in spring.buckets][1:3] == ["01:00 CET", "03:00 CEST"] and len(spring.buckets) == 23
    assert dict(spring.buckets)["03:00 CEST"] == 1
    # A week across the change: seven local days, the key counted on its own day.
    week = activity(key_at(dt.datetime(2026, 10, 25, 22, 30, tzinfo=dt.timezone.utc)), dt.date(2026, 10, 19), 7,
                    berlin)
    assert dict(week.buckets) == {f"{d:%a} {d}": int(d == dt.date(2026, 10, 25))
                                  for d in (dt.date(2026, 10, 19) + dt.timedelta(days=i) for i in range(7))}

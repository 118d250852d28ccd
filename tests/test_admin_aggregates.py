"""The admin's activity counts kept at ingest (``store/_db/_aggregates.py``) and the k >= 5 rule on admin pages.

The counts must always equal a recount from the decrypted events (``_views.activity_by_app``, the
old page's computation): after ingest (batches out of seq order, spanning midnight, several
sessions), after retention, selective deletion of a session and of a day, and erasure, on SQLite
and PostgreSQL; a store from before migration 0009 gets them by the backfill run on open. Over real
HTTP, the activity page shows only applications of at least five people, adds no ``events.read``
audit entry, and dataset pages show no application's figures behind fewer than five people.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import func, select

from deskcorder.collect._portal._admin import _card_apps_of_k_people, _apps_of_k_people
from deskcorder.collect._portal._views import K_ANONYMITY, activity_by_app, k_anonymous
from deskcorder.events import Event, EventKind
from deskcorder.store import EventStore
from deskcorder.store._db._migrate import alembic_config
from deskcorder.store._db._tables import activity_counts, activity_parts

from .helpers import READ, TEST_ACTOR, enrol, next_utc_midnight_ns, start_collector
from .test_portal_auth import log_in
from .test_store_event_store import database_url, make_batch  # noqa: F401  (fixture: both databases)

NS = 1_000_000_000
# The day after tomorrow, 00:00 UTC: every event is after the consent given now, and the data spans midnight.
MIDNIGHT = next_utc_midnight_ns() + 86_400 * NS
APPS = [("Editor", "editor"), (None, "terminal"), ("Chat", "chat")]  # (None, x): named by its process


def desk(rng: random.Random, session: str, start_ns: int, n: int, *, first_focus: bool = True) -> list[Event]:
    """``n`` events of one session: typing, clicks, moves and focus changes, 1-30 s apart."""
    events: list[Event] = []
    t = start_ns
    for seq in range(n):
        r = rng.random()
        if (seq == 0 and first_focus) or (seq > 0 and r < 0.08):
            app_class, process = rng.choice(APPS)
            events.append(Event(session, seq, t, t, EventKind.FOCUS, app_class=app_class, app_process=process,
                                window_title=f"window {seq}"))
        elif r < 0.5:
            events.append(Event(session, seq, t, t, EventKind.KEY_DOWN, key="a", char="a"))
        elif r < 0.6:
            events.append(Event(session, seq, t, t, EventKind.BUTTON_DOWN, button="left", x=1, y=2))
        else:
            events.append(Event(session, seq, t, t, EventKind.MOVE, x=seq % 100, y=seq % 50))
        t += rng.randint(1, 30) * NS
    return events


def fill(store: EventStore, rng: random.Random) -> None:
    """Three people; sessions across midnight, cut into batches stored partly out of seq order."""
    batches = []
    for person in ("alice", "bob", "carol"):
        enrol(store, person, f"device-{person}")
        for s in range(2):
            session = f"sess-{person}-{s}"
            events = desk(rng, session, MIDNIGHT - 2400 * NS + s * 1200 * NS, 250, first_focus=s == 0)
            cuts = sorted(rng.sample(range(1, len(events)), 5))
            for i, (a, b) in enumerate(zip([0, *cuts], [*cuts, len(events)])):
                batches.append(make_batch(f"batch-{session}-{i}", events[a:b], f"device-{person}"))
    # Two sessions in one batch: dave's.
    enrol(store, "dave", "device-dave")
    two = desk(rng, "sess-dave-0", MIDNIGHT - 600 * NS, 50) + desk(rng, "sess-dave-1", MIDNIGHT - 500 * NS, 50)
    batches.append(make_batch("batch-dave-both", two, "device-dave"))
    order = list(range(len(batches)))
    for _ in range(10):  # some late arrivals: a part stored after one it precedes
        i, j = rng.sample(order, 2)
        order[i], order[j] = order[j], order[i]
    for i in order:
        assert not store.write_batch(batches[i]).duplicate


def recount(store: EventStore) -> tuple[set[tuple[Any, ...]], int]:
    """What the old page computed, from every stored event decrypted (no k: every group)."""
    owners = {d.device_id: d.employee_id for d in store.devices()}
    shown, hidden, people = activity_by_app(store.read_events(**READ), owners, k=1)
    assert hidden == 0
    return {(a.app, a.people, a.events, a.keys, a.clicks) for a in shown}, people


def counted(store: EventStore) -> tuple[set[tuple[Any, ...]], int]:
    totals = store.activity_totals()
    return {(a.app, a.people, a.events, a.keys, a.clicks) for a in totals.apps}, totals.people


def assert_counts_equal_recount(store: EventStore) -> None:
    assert counted(store) == recount(store)


def test_counts_equal_a_recount_after_ingest_retention_deletions_and_erasure(
        tmp_path: Path, database_url: str | None) -> None:  # noqa: F811
    with EventStore(tmp_path / "data", database_url=database_url) as store:
        fill(store, random.Random(7))
        with store._engine.connect() as conn:  # what makes it hard is there: batches across midnight
            across = select(activity_parts.c.batch_id).group_by(activity_parts.c.batch_id).having(
                func.count(activity_parts.c.day.distinct()) > 1)
            assert len(conn.execute(across).all()) >= 2
        apps, people = counted(store)
        assert people == 4 and {a[0] for a in apps} >= {"Editor", "terminal", "Chat", "(before any window)"}
        assert_counts_equal_recount(store)

        store.delete_events("alice", session_id="sess-alice-0", actor=TEST_ACTOR, reason="test: a session")
        assert_counts_equal_recount(store)
        day = dt.datetime.fromtimestamp(MIDNIGHT // NS, dt.timezone.utc).date()
        store.delete_events("bob", day=day, actor=TEST_ACTOR, reason="test: a day")  # the later day
        assert_counts_equal_recount(store)

        # Retention of the earlier day (policy: 3650 days): its parts go, the sessions keep the later day,
        # whose first events now count for "(before any window)" or the app of their own first focus.
        now = dt.datetime.combine(day, dt.time(1), dt.timezone.utc) + dt.timedelta(days=3650)
        deleted = store.apply_retention(now, TEST_ACTOR)
        assert [d.date for d in deleted] == [day - dt.timedelta(days=1)]
        assert_counts_equal_recount(store)

        store.erase_employee("carol", TEST_ACTOR, "test: erasure")
        assert_counts_equal_recount(store)
        with store._engine.connect() as conn:  # gone with her batch rows, not only left out of the totals
            for table in (activity_counts, activity_parts):
                assert conn.execute(select(func.count()).select_from(table)
                                    .where(table.c.batch_id.like("batch-sess-carol-%"))).scalar() == 0
        assert counted(store)[1] == 2  # alice (her other session) and dave; bob had only these two days
    with EventStore(tmp_path / "data", database_url=database_url) as store:  # and after reopening
        assert_counts_equal_recount(store)


def test_a_store_from_before_the_counts_gets_them_when_opened(tmp_path: Path) -> None:
    with EventStore(tmp_path / "data") as store:
        fill(store, random.Random(11))
        expected = recount(store)
        url = str(store._engine.url)
    cfg = alembic_config(url)
    command.downgrade(cfg, "0008")  # as an older deskcorder left it: no counts at all
    with EventStore(tmp_path / "data") as store:  # upgrades, and counts what is stored
        assert counted(store) == expected
        with store._engine.connect() as conn:
            assert conn.exec_driver_sql("select value from store_settings where name = 'activity_aggregates'"
                                        ).scalar() == "done"


def test_k_anonymous_hides_small_groups_and_everything_below_k_people() -> None:
    class A:
        def __init__(self, app: str, people: int):
            self.app, self.people = app, people

    apps = [A("Editor", 5), A("Solo", 1), A("Four", 4)]
    shown, hidden, people = k_anonymous(apps, 7)
    assert [a.app for a in shown] == ["Editor"] and hidden == 2 and people == 7
    assert k_anonymous(apps, 4) == ([], 3, 4)  # fewer than k people in all: nothing, not even Editor


def test_dataset_pages_show_an_applications_figures_only_behind_at_least_k_people() -> None:
    details = {"persons": 6, "apps": {"Editor": {"persons": 5, "actions": 50},
                                      "Solo": {"persons": 1, "actions": 3},
                                      "Unsaid": {"actions": 9}}}  # a build that did not record people per app
    kept, allowed = _apps_of_k_people(details)
    assert allowed == {"Editor"} and set(kept["apps"]) == {"Editor", "(not shown)"}
    assert "2 applications not shown" in kept["apps"]["(not shown)"]
    assert _apps_of_k_people({**details, "persons": 4})[1] == set()  # a build of fewer than k people
    card = ("# Card\n\nApplications:\n\n| app (WM_CLASS) | episodes | actions | seconds |\n|---|---|---|---|\n"
            "| Editor | 9 | 50 | 1.0 |\n| Solo | 1 | 3 | 0.5 |\n| Un\\|said | 2 | 9 | 0.1 |\n\nSplits:\n")
    shown = _card_apps_of_k_people(card, allowed)
    assert "| Editor | 9 |" in shown and "Solo" not in shown and "said" not in shown
    assert "2 applications not shown" in shown and shown.endswith("Splits:\n")


def typing(session: str, app: str, keys: int, t0: int) -> list[Event]:
    events = [Event(session, 0, 0, t0, EventKind.FOCUS, app_class=app, window_title=f"{session} private title")]
    events += [Event(session, i, i, t0 + i * NS, EventKind.KEY_DOWN, key="x", char="x") for i in range(1, keys + 1)]
    return events + [Event(session, keys + 1, 0, t0 + (keys + 1) * NS, EventKind.BUTTON_DOWN, button="left",
                           x=1, y=1)]


def test_the_activity_page_reads_counts_over_http_shows_k_people_and_adds_no_audit_entry(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    people = [f"person{i}" for i in range(K_ANONYMITY)]
    t0 = next_utc_midnight_ns()  # within the collector's clock skew (its retention removes what is beyond)
    with EventStore(data_dir) as store:
        for i, handle in enumerate(people):
            enrol(store, handle, f"device-{handle}")
            events = typing(f"sess-{handle}-e", "Editor", 3 + i, t0)
            store.write_batch(make_batch(f"batch-{handle}-e", events, f"device-{handle}"))
        store.write_batch(make_batch("batch-solo-0001", typing("sess-solo", "Solo", 50, t0),
                                     "device-person0"))
        store.portal.set_password("ops", "ops-admin-password", role="admin", actor=TEST_ACTOR)
        store.audit("dataset-builder", "dataset.build", "dataset", "test build",
                    {"persons": 5, "apps": {"Editor": {"persons": 5, "actions": 25},
                                            "Solo": {"persons": 1, "actions": 51}},
                     "card": "Applications:\n\n| app | actions |\n|---|---|\n| Editor | 25 |\n| Solo | 51 |\n"})
        reads = len(store.audit_entries(action="events.read"))
    with start_collector(data_dir) as url:
        ops = log_in(url, "ops", "ops-admin-password")
        page = ops.get("/admin/activity").text
        row = re.search(r"<tr><td>Editor</td><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td>", page)
        keys = sum(3 + i for i in range(K_ANONYMITY))
        assert row and row.groups() == ("5", str(keys + 2 * K_ANONYMITY), str(keys), "5")
        assert "Solo" not in page and "private title" not in page
        assert re.search(r'id="suppressed">1 application used by fewer than 5 people not shown', page)
        entry = re.search(r'href="/admin/datasets/(\d+)"', ops.get("/admin/datasets").text).group(1)
        card = ops.get(f"/admin/datasets/{entry}").text
        assert "Editor" in card and "Solo" not in card and "1 application not shown" in card
    with EventStore(data_dir) as store:
        assert len(store.audit_entries(action="events.read")) == reads  # the views decrypted nothing

"""What the portal's pages compute: k-anonymous aggregates, typed runs, charts and cards (no server needed)."""

from __future__ import annotations

import pyarrow as pa

from deskcorder.collect._portal._views import (
    K_ANONYMITY,
    activity_by_app,
    bar_chart_svg,
    dataset_card,
    events_per_day,
    policy_in_words,
    typed_runs,
)
from deskcorder.events import Event, EventKind, columns_to_table, events_to_columns
from deskcorder.policy import parse_policy
from deskcorder.store import READ_SCHEMA

DAY = 86_400 * 10**9
T0 = 1_800_000_000 * 10**9


def table(events: list[Event], device_id: str = "device-0001") -> pa.Table:
    t = columns_to_table(events_to_columns(events))
    return t.append_column("device_id", pa.array([device_id] * t.num_rows, pa.string())).cast(READ_SCHEMA)


def focus_and_keys(session: str, app: str, n_keys: int, t0: int = T0) -> list[Event]:
    events = [Event(session, 0, 0, t0, EventKind.FOCUS, app_class=app, window_title="private title")]
    events += [Event(session, i, i, t0 + i, EventKind.KEY_DOWN, key="a", char="a") for i in range(1, n_keys + 1)]
    return events


def test_activity_shows_only_apps_with_at_least_k_people() -> None:
    parts, owners = [], {}
    for i in range(K_ANONYMITY):
        device = f"device-{i:04d}"
        owners[device] = f"emp_{i}"
        parts.append(table(focus_and_keys(f"s{i}", "Editor", 3), device))
    parts.append(table(focus_and_keys("lonely", "Solo", 50), "device-0000"))
    shown, hidden, people = activity_by_app(pa.concat_tables(parts), owners)
    assert [(r.app, r.people, r.keys) for r in shown] == [("Editor", K_ANONYMITY, 3 * K_ANONYMITY)]
    assert hidden == 1 and people == K_ANONYMITY


def test_activity_shows_nothing_when_fewer_than_k_people_recorded_anything() -> None:
    owners = {f"device-{i:04d}": f"emp_{i}" for i in range(K_ANONYMITY - 1)}
    events = pa.concat_tables([table(focus_and_keys(f"s{i}", "Editor", 3), d) for i, d in enumerate(owners)])
    shown, hidden, people = activity_by_app(events, owners)
    assert shown == [] and hidden == 1 and people == K_ANONYMITY - 1


def test_typed_runs_apply_backspace_and_end_at_keys_hotkeys_clicks_and_window_changes() -> None:
    s, e = "sess-typing", []

    def add(kind: EventKind, **kw: object) -> None:
        e.append(Event(s, len(e), len(e), T0 + len(e), kind, **kw))

    add(EventKind.FOCUS, app_class="Editor", window_title="notes")
    for ch in "helo":
        add(EventKind.KEY_DOWN, key=ch, char=ch)
    add(EventKind.KEY_DOWN, key="backspace")
    for ch in "lo":
        add(EventKind.KEY_DOWN, key=ch, char=ch)
    add(EventKind.KEY_DOWN, key="ctrl_l")
    add(EventKind.KEY_DOWN, key="s", char="s")  # ctrl+s: a hotkey, not the letter s
    add(EventKind.KEY_UP, key="ctrl_l")
    add(EventKind.KEY_DOWN, key="W", char="W")
    add(EventKind.BUTTON_DOWN, button="left", x=1, y=1)
    add(EventKind.KEY_DOWN, key="x", char="x")
    add(EventKind.FOCUS, app_class="Terminal", window_title="sh")
    add(EventKind.KEY_DOWN, key="l", char="l")
    add(EventKind.KEY_DOWN, key="enter")
    runs = typed_runs(table(e))
    assert [(r.app, r.text, r.ended_by) for r in runs] == [
        ("Editor", "hello", "ctrl+s"), ("Editor", "W", None), ("Editor", "x", None), ("Terminal", "l", "enter")]


def test_typed_text_is_escaped_when_shown() -> None:
    events = [Event("s", 0, 0, T0, EventKind.FOCUS, app_class="Editor")]
    events += [Event("s", i + 1, i, T0 + i, EventKind.KEY_DOWN, key=c, char=c) for i, c in enumerate("<b>&")]
    (run,) = typed_runs(table(events))
    assert run.text == "<b>&" and str(run.shown) == "&lt;b&gt;&amp;" and run.redactions == 0


def test_events_per_day_fills_gaps_and_the_chart_is_plain_svg() -> None:
    events = table(focus_and_keys("a", "Editor", 2) + focus_and_keys("b", "Editor", 4, T0 + 3 * DAY))
    days = events_per_day(events)
    assert [n for _, n in days] == [3, 0, 0, 5]
    svg = str(bar_chart_svg(days))
    assert svg.startswith("<svg") and svg.count('class="bar"') == 4 and "<script" not in svg


def test_dataset_card_reads_whatever_keys_the_build_wrote() -> None:
    card = dataset_card({"n_people": 7, "policy_versions": [2, 3], "from": "2025-01-01",
                         "stats": {"redactions": {"EMAIL": 3}, "actions": {"click": 9}, "n_episodes": 4},
                         "unrelated": {"nested": True}})
    assert card["provenance"] == {"n_people": 7, "policy_versions": [2, 3], "from": "2025-01-01"}
    assert card["redactions"] == {"redactions": {"EMAIL": 3}}
    assert card["actions"] == {"actions": {"click": 9}, "n_episodes": 4}
    assert dataset_card({}) == {"provenance": {}, "redactions": {}, "actions": {}}


def test_a_policy_reads_as_plain_sentences() -> None:
    policy = parse_policy('version = 3\nretention_days = 30\n[[apps]]\nwm_class = "Code"\n'
                          'title_exclude = ["(?i)password"]\n[hours]\ndays = ["mon", "fri"]\nstart = "09:00"\n'
                          'end = "17:00"\n')
    words = policy_in_words(policy)
    assert words[0] == "Recorded: windows of the application “Code”, except windows whose title matches “(?i)password”."
    assert "Only on Monday, Friday, from 09:00 to 17:00 (UTC)." in words
    assert words[-1] == "Recorded data is kept for 30 days, then deleted."
    assert policy_in_words(None) == ["No recording policy has been set, so nothing is recorded."]


def test_typed_runs_mark_what_the_privacy_stage_would_redact() -> None:
    def run(text: str, app: str, title: str) -> list[Event]:
        events = [Event("s", 0, 0, T0, EventKind.FOCUS, app_class=app, window_title=title)]
        return events + [Event("s", i + 1, i, T0 + i, EventKind.KEY_DOWN, key=c, char=c) for i, c in enumerate(text)]

    (mail,) = typed_runs(table(run("to bob@example.com <EMAIL>", "Editor", "notes")))
    assert mail.text == "to bob@example.com <EMAIL>"  # the author's own text, as typed
    assert str(mail.shown) == ('to <mark class="redacted" title="removed before any dataset">&lt;EMAIL&gt;</mark> '
                               '&lt;EMAIL&gt;')  # a placeholder typed literally is not counted as a redaction
    assert mail.redactions == 1
    (secret,) = typed_runs(table(run("hunter2hunter2", "Pinentry", "Unlock keyring")))
    assert "&lt;PASSWORD&gt;" in str(secret.shown) and "hunter2" not in str(secret.shown)

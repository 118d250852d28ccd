"""Recording policies: parsed strictly, and nothing is in scope unless a rule says so."""

from __future__ import annotations

import datetime as dt

import pytest

from deskcorder.policy import PolicyError, parse_policy

POLICY = r'''
version = 2
retention_days = 30
scope_text = "Notes and the code editor, weekdays 08:00-19:00."

[[apps]]
wm_class = "Notes"

[[apps]]
process = "code"
title_exclude = ["(?i)password", "\\.env$"]

[hours]
days = ["mon", "tue", "wed", "thu", "fri"]
start = "08:00"
end = "19:00"
timezone = "Europe/Paris"
'''


def test_allowed_apps_match_by_class_process_and_title() -> None:
    policy = parse_policy(POLICY)
    assert policy.allows_app("Notes", None, "notes.txt - Notes")
    assert policy.allows_app("notes", "python3", "anything")  # WM_CLASS compares case-insensitively
    assert policy.allows_app("Code", "code", "main.py - project")
    assert not policy.allows_app("Code", "code", "Enter password")
    assert not policy.allows_app("Code", "code", "settings/.env")
    assert not policy.allows_app("XTerm", "xterm", "bash")


def test_working_hours_use_the_policy_timezone() -> None:
    policy = parse_policy(POLICY)
    monday_9_paris = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.timezone.utc)  # 09:00 in Paris
    monday_7_paris = dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.timezone.utc)
    saturday_noon = dt.datetime(2026, 11, 21, 11, 0, tzinfo=dt.timezone.utc)
    assert policy.allows_time(monday_9_paris)
    assert not policy.allows_time(monday_7_paris)
    assert not policy.allows_time(saturday_noon)


def test_a_policy_without_rules_records_nothing() -> None:
    policy = parse_policy("version = 1")
    assert not policy.allows_app("Notes", "notes", "x")


@pytest.mark.parametrize("text, words", [
    ("version = 0", "version"),
    ("version = 1\nretention_days = 0", "retention_days"),
    ("version = 1\n[[apps]]\ntitle_exclude = ['x']", "needs wm_class"),
    ("version = 1\n[[apps]]\nwm_class = 'A'\ntitle_include = ['(']", "not a valid regular expression"),
    ("version = 1\n[hours]\ndays = ['funday']", "unknown day 'funday'"),
    ("version = 1\n[hours]\nstart = '25:00'", "hours.start"),
    ("version = 1\n[hours]\ntimezone = 'Mars/Olympus'", "unknown timezone"),
    ("version = 1\nrecord_everything = true", "record_everything"),
    ("version = ", "not valid TOML"),
])
def test_invalid_policies_are_refused_with_the_setting_named(text: str, words: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(text)
    assert words in str(info.value)

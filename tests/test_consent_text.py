"""What a person consents to is generated from the rules the agents enforce, and a policy that cannot mean
what it says is refused, by the library and by `deskcorder policy set`, with an error naming the problem.

Each enforced rule is changed in turn and the consent text must change with it: the applications in
words, the hours with their days and timezone, the retention; what is captured and what never is stays
said; the admin's own text only ever appears as their addition, after the rules.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from deskcorder.policy import PolicyError, check_policy, consent_lines, consent_text, parse_policy
from deskcorder.store import EventStore, InvalidInput

from .helpers import TEST_ACTOR
from .privacy_rig import clean_error, cli

APPS = '[[apps]]\nwm_class = "Notes"\n'
HOURS = ('[hours]\ndays = ["mon", "tue", "wed", "thu", "fri"]\nstart = "09:00"\nend = "17:00"\n'
         'timezone = "Europe/Paris"\n')
SCOPE = "Notes, in office hours."


def policy_toml(*, apps: str = APPS, hours: str = HOURS, retention: int = 30, scope: str = SCOPE) -> str:
    return f'version = 1\nretention_days = {retention}\nscope_text = "{scope}"\n\n{apps}\n{hours}'


def text_of(toml: str) -> str:
    return consent_text(check_policy(parse_policy(toml)), 1)


BASE = text_of(policy_toml())


@pytest.mark.parametrize("change, toml, said, unsaid", [
    ("another application", policy_toml(apps='[[apps]]\nwm_class = "Terminal"\n'), "application “Terminal”",
     "“Notes”"),
    ("a program as well", policy_toml(apps=APPS + '\n[[apps]]\nprocess = "code"\n'), "windows of the program “code”",
     None),
    ("windows left out", policy_toml(apps='[[apps]]\nwm_class = "Notes"\ntitle_exclude = ["(?i)bank"]\n'),
     "except windows whose title matches “(?i)bank”", None),
    ("only some titles", policy_toml(apps='[[apps]]\nwm_class = "Notes"\ntitle_include = ["report"]\n'),
     "whose title matches “report”", None),
    ("other days", policy_toml(hours=HOURS.replace('"mon", "tue", "wed", "thu", "fri"', '"sat", "sun"')),
     "only on Saturday, Sunday", "weekdays"),
    ("an earlier start", policy_toml(hours=HOURS.replace("09:00", "07:30")), "from 07:30 to 17:00", "09:00"),
    ("a later end", policy_toml(hours=HOURS.replace("17:00", "18:45")), "to 18:45 (until 18:45:59)", "17:00"),
    ("another timezone", policy_toml(hours=HOURS.replace("Europe/Paris", "America/New_York")),
     "America/New_York time", "Europe/Paris"),
    ("no hours", policy_toml(hours="", scope="Notes."), "At any time of day, every day of the week.", "When:"),
    ("a shorter retention", policy_toml(retention=7), "Kept for 7 days after it is recorded", "30 days"),
    ("other words from the admin", policy_toml(scope="Notes while at work, in office hours."),
     "in their own words (the rules above are what is enforced): “Notes while at work, in office hours.”", SCOPE),
    ("no words from the admin", policy_toml(scope=""), None, "Your admin adds"),
])
def test_changing_an_enforced_rule_changes_the_consent_text(change: str, toml: str, said: str | None,
                                                            unsaid: str | None) -> None:
    text = text_of(toml)
    assert text != BASE, change
    if said is not None:
        assert said in text and said not in BASE, change
    if unsaid is not None:
        assert unsaid in BASE and unsaid not in text, change


def test_the_consent_text_says_what_is_captured_and_what_never_is_and_ends_with_the_admins_words() -> None:
    lines = consent_lines(parse_policy(policy_toml()))
    assert lines[0] == "Recorded: windows of the application “Notes”."
    assert lines[1] == ("When: on weekdays (Monday to Friday), from 09:00 to 17:00 (until 17:00:59), Europe/Paris "
                        "time; never at other times.")
    captured = next(line for line in lines if line.startswith("Captured there:"))
    assert "every key pressed" in captured and "No screenshots, no audio, no clipboard, no files." in captured
    never = next(line for line in lines if line.startswith("Never recorded:"))
    assert "password prompts" in never and "every other application, not even its window title" in never
    assert any(line.startswith("Where it goes:") for line in lines)
    # The admin's text is the last line, labelled as theirs; nowhere else is it quoted as a rule.
    assert lines[-1] == f"Your admin adds, in their own words (the rules above are what is enforced): “{SCOPE}”"
    assert sum(SCOPE in line for line in lines) == 1


def test_the_hours_in_words_are_the_hours_enforced() -> None:
    policy = parse_policy(policy_toml())
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    monday = dt.datetime(2026, 11, 23, tzinfo=paris)
    assert "from 09:00 to 17:00 (until 17:00:59), Europe/Paris time" in consent_text(policy)
    assert policy.allows_time(monday.replace(hour=9)) and policy.allows_time(monday.replace(hour=17, second=59))
    assert not policy.allows_time(monday.replace(hour=8, minute=59)) and not policy.allows_time(
        monday.replace(hour=17, minute=1))
    assert not policy.allows_time((monday + dt.timedelta(days=5)).replace(hour=12))  # a Saturday


# (what is contradictory, the policy, words the error must hold: the field and what is wrong)
CONTRADICTIONS = [
    ("an empty app list", policy_toml(apps=""), ("apps:", "allows no application", "add at least one [[apps]]")),
    ("hours that end before they start", policy_toml(hours=HOURS.replace('"17:00"', '"08:00"')),
     ("hours.end: 08:00 is not after hours.start 09:00",)),
    ("hours that end as they start", policy_toml(hours=HOURS.replace('"17:00"', '"09:00"')),
     ("hours.end: 09:00 is not after hours.start 09:00",)),
    ("hours on no day", policy_toml(hours=HOURS.replace('"mon", "tue", "wed", "thu", "fri"', "")),
     ("hours.days:", "no day at all")),
    ("a day twice", policy_toml(hours=HOURS.replace('"fri"', '"fri", "mon"')),
     ("hours.days:", "'mon' is listed twice")),
    ("the same rule twice", policy_toml(apps=APPS + "\n" + APPS), ("apps[1]: the same rule as apps[0]",)),
    ("a rule that can never match",
     policy_toml(apps='[[apps]]\nwm_class = "Notes"\ntitle_include = ["x"]\ntitle_exclude = ["x"]\n'),
     ("apps[0].title_exclude:", "can never match")),
    ("words promising hours the rules lack", policy_toml(hours="", scope="Only Notes, weekdays 9-5."),
     ("scope_text:", "no [hours]", "at any time")),
    ("words promising apps the rules do not limit",
     policy_toml(apps='[[apps]]\ntitle_include = [".*"]\n', scope="Only the terminal, in office hours."),
     ("scope_text:", "'Only'", "apps[0] allows every application")),
]


@pytest.mark.parametrize("problem, toml, words", CONTRADICTIONS, ids=[c[0] for c in CONTRADICTIONS])
def test_a_contradictory_policy_is_refused_by_the_library_naming_the_problem(
        problem: str, toml: str, words: tuple[str, ...], tmp_path: Path) -> None:
    parse_policy(toml)  # it reads as a policy: stored ones still load; a new one must also make sense
    with pytest.raises(PolicyError) as refused:
        check_policy(parse_policy(toml))
    assert all(w in str(refused.value) for w in words), (problem, str(refused.value))
    with EventStore(tmp_path / "data") as store:
        with pytest.raises(InvalidInput) as stored:
            store.set_policy(toml, actor=TEST_ACTOR)
        assert str(stored.value).startswith("invalid policy: ") and all(w in str(stored.value) for w in words)
        assert stored.value.field == "policy"
        assert store.current_policy().version == 0  # nothing was set


def test_a_contradictory_policy_is_refused_by_policy_set_with_one_clear_error(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert cli(data_dir, "init").returncode == 0
    files = []
    for i, (_, toml, _) in enumerate(CONTRADICTIONS):
        files.append(tmp_path / f"contradiction-{i}.toml")
        files[-1].write_text(toml)
    with ThreadPoolExecutor(len(files)) as pool:  # independent commands, side by side
        results = list(pool.map(lambda f: cli(data_dir, "policy", "set", str(f)), files))
    for (problem, _, words), result in zip(CONTRADICTIONS, results):
        clean_error(result, "invalid policy", *words)
        assert len(result.stderr.strip().splitlines()) == 1, (problem, result.stderr)
    assert "no policy is set" in cli(data_dir, "policy", "show").stdout
    good = tmp_path / "good.toml"
    good.write_text(policy_toml())
    assert cli(data_dir, "policy", "set", str(good)).returncode == 0  # the same store takes a sound one
    shown = cli(data_dir, "policy", "show").stdout  # the rules, and what they mean for the person, as comments
    assert "# - Recorded: windows of the application “Notes”." in shown and "# - Kept for 30 days" in shown
    assert parse_policy(shown) == parse_policy(policy_toml())  # still a policy that can be saved and set again

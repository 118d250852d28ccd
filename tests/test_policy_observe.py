"""The policy's ``observe`` setting: off unless an admin turns it on, said in the consent text in plain words,
and turning it on is a new policy version that nobody records under until they agree to it again.

Real store on disk; the agent side reads the device status the collector would serve (``status_from_json``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deskcorder.capture._status import status_from_json
from deskcorder.observations import FRAME_FORMATS, OBSERVE_LEVELS
from deskcorder.policy import (FrameSettings, Policy, PolicyError, check_policy, consent_lines, consent_text,
                               parse_policy)
from deskcorder.store import EventStore

from .helpers import TEST_ACTOR, enrol

APPS = '[[apps]]\nwm_class = "Notes"\n'


def policy(version: int = 1, extra: str = "") -> str:
    return f"version = {version}\n{extra}\n{APPS}"


def captured(p: Policy) -> str:
    return next(line for line in consent_lines(p) if line.startswith("Captured there:"))


def test_observation_is_off_by_default_and_the_text_says_no_screenshots() -> None:
    p = check_policy(parse_policy(policy()))
    assert p.observe == "none" and p.frames == FrameSettings()
    assert "No screenshots" in captured(p) and "accessibility" not in captured(p)


def test_the_levels_and_formats_are_the_observation_models() -> None:
    # One name per concept: the policy accepts exactly the levels and formats deskcorder.observations defines.
    assert Policy.model_fields["observe"].annotation.__args__ == OBSERVE_LEVELS
    assert FrameSettings.model_fields["format"].annotation.__args__ == FRAME_FORMATS
    for level in OBSERVE_LEVELS:
        assert parse_policy(policy(extra=f'observe = "{level}"')).observe == level


def test_frames_are_named_in_plain_words_with_their_rate_and_size() -> None:
    p = check_policy(parse_policy(policy(extra='observe = "frames"\n[frames]\nmax_per_second = 1\nmax_side = 960\n'
                                               'format = "png"\n')))
    line = captured(p)
    assert "screenshots of the window in front" in line
    assert "at most 1 picture a second" in line and "at most 960 pixels" in line
    assert "never the rest of the screen, nor other windows over it" in line
    assert "password fields blacked out" in line and "No screenshots" not in line
    assert "the button “Save”" in line  # frames include the element under each click
    where = next(line for line in consent_lines(p) if line.startswith("Where it goes:"))
    assert "blacked out of the pictures" in where
    default = captured(check_policy(parse_policy(policy(extra='observe = "frames"'))))
    assert "at most 2 pictures a second" in default and "at most 1280 pixels" in default


def test_elements_are_named_without_promising_or_taking_screenshots() -> None:
    line = captured(check_policy(parse_policy(policy(extra='observe = "elements"'))))
    assert "the control you click" in line and "never a password field's label or contents" in line
    assert "No screenshots" in line


@pytest.mark.parametrize("extra, field", [
    ('observe = "video"', "observe"),
    ('observe = "frames"\n[frames]\nmax_per_second = 0\n', "frames.max_per_second"),
    ('observe = "frames"\n[frames]\nmax_per_second = 30\n', "frames.max_per_second"),
    ('observe = "frames"\n[frames]\nmax_side = 10\n', "frames.max_side"),
    ('observe = "frames"\n[frames]\nformat = "jpeg"\n', "frames.format"),
    ('observe = "frames"\n[frames]\nfps = 2\n', "frames.fps"),
])
def test_bad_observe_settings_are_refused_naming_the_setting(extra: str, field: str) -> None:
    with pytest.raises(PolicyError) as exc:
        parse_policy(policy(extra=extra))
    assert str(exc.value).startswith(f"{field}:")


def test_frame_settings_without_frames_are_refused_as_a_policy_that_cannot_mean_what_it_says() -> None:
    p = parse_policy(policy(extra='[frames]\nmax_side = 640\n'))  # stored policies still parse
    with pytest.raises(PolicyError, match=r'^frames: \[frames\] is set but observe = .none.*set observe = "frames"'):
        check_policy(p)


def test_turning_frames_on_is_a_new_version_that_needs_new_consent(tmp_path: Path) -> None:
    with EventStore(tmp_path / "data") as store:
        store.set_policy(policy(1), actor=TEST_ACTOR)
        enrol(store, "obs-alice", "obs-alice-desk")
        before = status_from_json(store.device_status("obs-alice-desk").as_json())
        assert before.allowed and before.policy is not None and before.policy.observe == "none"

        store.set_policy(policy(2, 'observe = "frames"'), actor=TEST_ACTOR)
        after = status_from_json(store.device_status("obs-alice-desk").as_json())
        # The agent records nothing, frames least of all, until the person agrees to what frames mean.
        assert (after.allowed, after.reason) == (False, "policy_changed")
        assert after.policy is not None and after.policy.observe == "frames"

        record = store.record_consent("obs-alice", "give", policy_version=2, method="api", actor=TEST_ACTOR)
        assert "screenshots of the window in front" in record.scope_text  # the consent keeps what was shown
        assert record.scope_text == consent_text(after.policy, 2)
        again = status_from_json(store.device_status("obs-alice-desk").as_json())
        assert again.allowed and again.policy is not None and again.policy.observe == "frames"
        first = store.consent_history("obs-alice")[0]
        assert "No screenshots" in first.scope_text and "screenshots of the window" not in first.scope_text

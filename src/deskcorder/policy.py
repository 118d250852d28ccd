"""The recording policy: which applications may be recorded, when, and for how long data is kept.

A policy is a small TOML document, versioned, written by an admin and served
by the collector; the agent applies it at the source, so anything out of
scope is dropped before it touches the disk. Example::

    version = 3
    retention_days = 90
    scope_text = "Only the apps listed below, on weekdays 08:00-19:00."

    [[apps]]
    wm_class = "Notes"

    [[apps]]
    process = "code"
    title_exclude = ["(?i)password", "(?i)\\\\.env$"]

    [hours]
    days = ["mon", "tue", "wed", "thu", "fri"]
    start = "08:00"
    end = "19:00"
    timezone = "Europe/Paris"

    observe = "frames"     # none (the default) | elements | frames

    [frames]               # only with observe = "frames"; these are the defaults
    max_per_second = 2
    max_side = 1280
    format = "webp"        # or "png" (lossless, larger)

``observe`` says what is recorded beside the input (see
``deskcorder.observations``): ``none``, nothing; ``elements``, the kind, label
and box of the UI element under each click (never a password field's
label); ``frames``, that and, at each action (a click, the first key of a
typing run, a shortcut, the start of a scroll; at most ``max_per_second``), a
picture of only the focused allowed window, scaled down to ``max_side``
pixels on its long side. Since versions only go up and consent names its
version, turning observation on (or changing its settings) asks everyone to
agree again.

An app rule matches when every field it sets matches (WM_CLASS and process
names compare case-insensitively and exactly; title patterns are regular
expressions searched in the window title). No rule, no recording: the default
policy allows nothing. Working hours include their end minute: 09:00-17:00
records until 17:00:59.

What a person consents to is ``consent_lines(policy)``: sentences generated
from the rules the agent enforces (applications, title exclusions, hours with
days and timezone, what is captured and what never is, retention, where the
data goes), with the admin's ``scope_text`` after them, labelled as the
admin's words. Free text can promise what the rules do not keep; the
generated sentences cannot. The same lines are shown by ``deskcorder consent
give``, ``deskcorder policy show``, the portal and the employee's export
(each consent record keeps the text that was shown).

``parse_policy`` reads any stored policy; ``check_policy`` is the stricter
gate a *new* policy passes (``deskcorder policy set``): it refuses policies
that cannot mean what they say (no application, hours that end before they
start, duplicate rules, a rule that can never match, an admin text that
promises limits the rules do not have).
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
import zoneinfo
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ._errors import DeskcorderError

__all__ = ["AppRule", "FrameSettings", "Hours", "Policy", "PolicyError", "check_policy", "consent_lines",
           "consent_text", "parse_policy"]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class PolicyError(DeskcorderError, ValueError):
    """A policy document is invalid; the message names the offending setting."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _compile(patterns: list[str], field: str) -> list[str]:
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{field}: {pattern!r} is not a valid regular expression ({exc})") from exc
    return patterns


class AppRule(_Strict):
    wm_class: str | None = None
    process: str | None = None
    title_include: list[str] = Field(default_factory=list)  # at least one must match, when given
    title_exclude: list[str] = Field(default_factory=list)  # none may match

    @field_validator("title_include", "title_exclude")
    @classmethod
    def _regexes(cls, v: list[str], info) -> list[str]:
        return _compile(v, info.field_name)

    @model_validator(mode="after")
    def _names_something(self) -> "AppRule":
        if not (self.wm_class or self.process or self.title_include):
            raise ValueError("an app rule needs wm_class, process or title_include")
        return self

    def matches(self, app_class: str | None, app_process: str | None, title: str | None) -> bool:
        if self.wm_class and (app_class or "").lower() != self.wm_class.lower():
            return False
        if self.process and (app_process or "").lower() != self.process.lower():
            return False
        title = title or ""
        if self.title_include and not any(re.search(p, title) for p in self.title_include):
            return False
        return not any(re.search(p, title) for p in self.title_exclude)


_Clock = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]


class Hours(_Strict):
    days: list[str] = Field(default_factory=lambda: list(_DAYS[:5]))
    start: _Clock = "00:00"
    end: _Clock = "23:59"
    timezone: str = "UTC"

    @field_validator("days")
    @classmethod
    def _known_days(cls, v: list[str]) -> list[str]:
        unknown = [d for d in v if d not in _DAYS]
        if unknown:
            raise ValueError(f"unknown day {unknown[0]!r}; use {', '.join(_DAYS)}")
        return v

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {v!r}") from exc
        return v

    def contains(self, when: dt.datetime) -> bool:
        local = when.astimezone(zoneinfo.ZoneInfo(self.timezone))
        if _DAYS[local.weekday()] not in self.days:
            return False
        return self.start <= local.strftime("%H:%M") <= self.end


class FrameSettings(_Strict):
    """How frames are taken under ``observe = "frames"``."""

    max_per_second: float = Field(default=2.0, gt=0, le=10)  # more would be video, which nobody consented to
    max_side: int = Field(default=1280, ge=64, le=3840)  # long side in pixels after downscaling
    format: Literal["webp", "png"] = "webp"


class Policy(_Strict):
    version: int = Field(ge=1)
    scope_text: str = ""  # the plain-words scope shown to employees when they consent
    retention_days: int = Field(default=90, ge=1, le=3650)
    apps: list[AppRule] = Field(default_factory=list)
    hours: Hours | None = None
    observe: Literal["none", "elements", "frames"] = "none"  # deskcorder.observations.OBSERVE_LEVELS
    frames: FrameSettings = Field(default_factory=FrameSettings)

    def allows_app(self, app_class: str | None, app_process: str | None, title: str | None) -> bool:
        return any(rule.matches(app_class, app_process, title) for rule in self.apps)

    def allows_time(self, when: dt.datetime) -> bool:
        return self.hours is None or self.hours.contains(when)


def parse_policy(text: str) -> Policy:
    """Parse and validate a TOML policy; PolicyError says which setting is wrong and why."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"policy is not valid TOML: {exc}") from exc
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "policy"
        raise PolicyError(f"{where}: {first['msg']}") from exc


# -- a new policy must mean what it says ------------------------------------------------------

# Words in an admin's text that promise limits; a policy whose rules have none of them is refused.
_PROMISES_HOURS = re.compile(r"\b(weekdays?|week-days?|working hours|office hours|monday|tuesday|wednesday|"
                             r"thursday|friday|saturday|sunday|mon-fri|\d{1,2}(:\d\d)?\s*(am|pm)?\s*(-|–|to)\s*"
                             r"\d{1,2}(:\d\d)?\s*(am|pm)?)\b", re.IGNORECASE)
_PROMISES_APPS = re.compile(r"\b(only|just|nothing else|no other)\b", re.IGNORECASE)


def check_policy(policy: Policy) -> Policy:
    """``policy`` if it can be enforced as it reads; else PolicyError naming the field and the fix."""
    if not policy.apps:
        raise PolicyError("apps: the policy allows no application, so nothing could ever be recorded; add at "
                          "least one [[apps]] rule (wm_class, process or title_include)")
    for i, rule in enumerate(policy.apps):
        if rule in policy.apps[:i]:
            raise PolicyError(f"apps[{i}]: the same rule as apps[{policy.apps.index(rule)}]; remove one")
        both = set(rule.title_include) & set(rule.title_exclude)
        if both:
            raise PolicyError(f"apps[{i}].title_exclude: {sorted(both)[0]!r} is also in title_include, so the "
                              f"rule can never match; remove it from one of them")
    hours = policy.hours
    if hours is not None:
        if not hours.days:
            raise PolicyError("hours.days: no day at all, so nothing could ever be recorded; list the days "
                              "(e.g. days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]) or remove [hours]")
        twice = next((d for i, d in enumerate(hours.days) if d in hours.days[:i]), None)
        if twice is not None:
            raise PolicyError(f"hours.days: {twice!r} is listed twice; list each day once")
        if hours.end <= hours.start:
            raise PolicyError(f"hours.end: {hours.end} is not after hours.start {hours.start}; hours cannot "
                              f"span midnight or be empty: set end later than start, or remove [hours] to allow "
                              f"any time")
    if "frames" in policy.model_fields_set and policy.observe != "frames":
        raise PolicyError(f"frames: [frames] is set but observe = {policy.observe!r}, so no frame is ever taken; "
                          f"set observe = \"frames\" or remove [frames]")
    text = policy.scope_text
    if hours is None and (promise := _PROMISES_HOURS.search(text)):
        raise PolicyError(f"scope_text: it says {promise.group(0)!r}, but the policy has no [hours], so it allows "
                          f"recording at any time; add [hours] with days, start, end and timezone, or reword "
                          f"scope_text")
    every = next((i for i, r in enumerate(policy.apps) if _allows_every_window(r)), None)
    if every is not None and (promise := _PROMISES_APPS.search(text)):
        raise PolicyError(f"scope_text: it says {promise.group(0)!r}, but apps[{every}] allows every "
                          f"application; name the applications (wm_class or process), or reword scope_text")
    return policy


def _allows_every_window(rule: AppRule) -> bool:
    return not (rule.wm_class or rule.process) and any(re.search(p, "") for p in rule.title_include)


# -- what a person consents to, in words ------------------------------------------------------

_DAY_NAMES = {"mon": "Monday", "tue": "Tuesday", "wed": "Wednesday", "thu": "Thursday", "fri": "Friday",
              "sat": "Saturday", "sun": "Sunday"}
NO_POLICY_TEXT = "No recording policy has been set, so nothing is recorded."


def consent_lines(policy: Policy | None) -> list[str]:
    """The sentences a person agrees to, generated from the rules that are enforced; the admin's text last."""
    if policy is None:
        return [NO_POLICY_TEXT]
    lines = [_app_words(rule) for rule in policy.apps] or ["No application may be recorded, so nothing is."]
    lines.append(_hours_words(policy.hours))
    lines.append("Captured there: every key pressed and released (so the text you type, character by character), "
                 "mouse movements, clicks and scrolling with the pointer position, and the application name "
                 "and title of the window in front. " + _observe_words(policy))
    lines.append("Never recorded: password prompts (windows whose title or program reads as one: sudo, login, "
                 "sign in, passphrase, pinentry, password managers), any time while recording is paused (the "
                 "pause hotkey, ctrl+alt+shift+p unless set otherwise; `deskcorder agent pause`; the portal), "
                 "time outside the hours above, and every other application, not even its window title.")
    lines.append(f"Kept for {policy.retention_days} days after it is recorded, then deleted; you can export or "
                 f"erase your data before that in the portal.")
    pictures = (", text that reads as a secret or personal detail blacked out of the pictures,"
                if policy.observe == "frames" else "")
    lines.append("Where it goes: from your computer to your organisation's deskcorder collector, where it is "
                 "stored encrypted; admins build AI training datasets from it, with typed secrets and personal "
                 f"numbers redacted{pictures} and your name replaced by a pseudonym.")
    if policy.scope_text.strip():
        lines.append(f"Your admin adds, in their own words (the rules above are what is enforced): "
                     f"“{policy.scope_text.strip()}”")
    return lines


def consent_text(policy: Policy | None, version: int | None = None) -> str:
    """``consent_lines`` as one text, as shown in the CLI and kept with each consent record."""
    head = [f"Recording policy version {version}:"] if version else []
    return "\n".join(head + [f"- {line}" for line in consent_lines(policy)])


def _observe_words(policy: Policy) -> str:
    element = ("the kind, label and position on screen of the control you click (for example the button "
               "“Save”), read through the accessibility interface, but never a password field's label or contents")
    if policy.observe == "elements":
        return f"Also, at each click: {element}. No screenshots, no audio, no clipboard, no files."
    if policy.observe == "frames":
        frames = policy.frames
        rate = f"{frames.max_per_second:g} picture{'s' if frames.max_per_second != 1 else ''} a second"
        return (f"Also, screenshots of the window in front: at each click, the first key of a typing run, each "
                f"keyboard shortcut and the start of each scroll, at most {rate}, a picture of that window "
                f"only (never the rest of the screen, nor other windows over it), scaled down to at most "
                f"{frames.max_side} pixels wide or high, with password fields blacked out; the screen size and "
                f"the window's position; and {element}. No audio, no clipboard, no files.")
    return "No screenshots, no audio, no clipboard, no files."


def _app_words(rule: AppRule) -> str:
    if _allows_every_window(rule) and not rule.title_exclude:
        return "Recorded: every application and window."
    parts = []
    if rule.wm_class:
        parts.append(f"windows of the application “{rule.wm_class}”")
    if rule.process:
        parts.append(f"{'run by' if parts else 'windows of'} the program “{rule.process}”")
    if rule.title_include and not all(re.search(p, "") for p in rule.title_include):
        parts.append(("whose" if parts else "windows whose") + " title matches "
                     + " or ".join(f"“{p}”" for p in rule.title_include))
    elif not parts:
        parts.append("every application and window")
    text = "Recorded: " + ", ".join(parts)
    if rule.title_exclude:
        text += ", except windows whose title matches " + " or ".join(f"“{p}”" for p in rule.title_exclude)
    return text + "."


def _hours_words(hours: Hours | None) -> str:
    if hours is None:
        return "At any time of day, every day of the week."
    if list(hours.days) == list(_DAYS[:5]):
        days = "on weekdays (Monday to Friday)"
    else:
        days = "only on " + (", ".join(_DAY_NAMES[d] for d in hours.days) or "no day")
    until = "midnight" if hours.end == "23:59" else f"{hours.end}:59"  # the end minute is included
    return (f"When: {days}, from {hours.start} to {hours.end} (until {until}), {hours.timezone} time; never at "
            f"other times.")

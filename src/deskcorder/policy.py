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

An app rule matches when every field it sets matches (WM_CLASS and process
names compare case-insensitively and exactly; title patterns are regular
expressions searched in the window title). No rule, no recording: the default
policy allows nothing.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
import zoneinfo
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = ["AppRule", "Hours", "Policy", "PolicyError", "parse_policy"]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class PolicyError(ValueError):
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


class Policy(_Strict):
    version: int = Field(ge=1)
    scope_text: str = ""  # the plain-words scope shown to employees when they consent
    retention_days: int = Field(default=90, ge=1, le=3650)
    apps: list[AppRule] = Field(default_factory=list)
    hours: Hours | None = None

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

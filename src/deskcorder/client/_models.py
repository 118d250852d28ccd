"""The admin API's bodies, defined once: the collector validates and documents with them
(``collect/_admin_api``) and the client parses its answers into them.

Requests forbid unknown keys (a misspelt field is a 422 naming it, not silently
ignored); answers allow them, so a newer collector's extra keys reach an older
client instead of breaking it. Times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["LoginToken", "NewEmployee", "Employee", "NewDevice", "Device", "TokenRequest", "EnrolmentToken",
           "Revocation", "ConsentRecord", "ConsentHistory", "ConsentEntry", "NewPolicy", "Policy", "AuditEntry",
           "AuditVerification", "BuildRequest", "Build", "BUILD_NAME_PATTERN", "BUILD_STATES"]

# A build's folder name under the collector's dataset folder: no path separator, no dot first, so a name from a
# request can never point anywhere else on the server.
BUILD_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
BUILD_STATES = ("running", "done", "failed")
_MAX_TTL_S = 30 * 86400


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Answer(BaseModel):
    model_config = ConfigDict(extra="allow")


class LoginToken(_Answer):
    token: str = Field(description="send it as Authorization: Bearer TOKEN; the collector keeps only its hash")
    expires_at: dt.datetime


class ConsentRecord(_Answer):
    """One consent act, as the store keeps it (oldest first in a history)."""

    action: Literal["give", "withdraw"]
    policy_version: int
    method: str = Field(description="portal, api, cli or paper (given elsewhere, entered by an admin)")
    recorded_at: dt.datetime
    scope_text: str = Field(description="the consent text the person was shown, generated from the policy")
    recorded_by: str | None = Field(description="who entered it (audit actor)")
    evidence: str | None = Field(description="method paper: what shows the person agreed")


class NewEmployee(_Request):
    handle: str = Field(min_length=1, max_length=64, description="their login, e.g. alice")
    display_name: str | None = Field(default=None, max_length=200)


class Employee(_Answer):
    employee_id: str = Field(description="opaque and random; what the audit log names")
    handle: str
    display_name: str | None
    created_at: dt.datetime
    devices: list[str] = Field(description="ids of the devices registered to them")
    consent_in_force: bool = Field(description="their latest act gives consent to the current policy version")
    latest_consent: ConsentRecord | None


class NewDevice(_Request):
    device_id: str = Field(min_length=1, max_length=200)
    employee: str = Field(min_length=1, max_length=64, description="the owner's handle")
    hostname: str = Field(min_length=1, max_length=255)


class Device(_Answer):
    device_id: str
    employee_id: str
    handle: str | None = Field(description="the owner's handle (null once they are erased)")
    hostname: str
    state: Literal["enrolled", "revoked", "not enrolled"]
    registered_at: dt.datetime
    revoked_at: dt.datetime | None
    first_seen: dt.datetime | None
    last_seen: dt.datetime | None
    n_batches: int
    n_events: int
    lost: dict[str, int] = Field(description="events its agent lost, by reason")


class TokenRequest(_Request):
    ttl_s: float = Field(default=86400, ge=60, le=_MAX_TTL_S, description="how long the token is valid, in seconds "
                                                                         "(1 minute to 30 days)")


class EnrolmentToken(_Answer):
    token: str = Field(description="shown once: the collector keeps only its hash")
    employee: str
    expires_at: dt.datetime


class Revocation(_Request):
    reason: str = Field(min_length=1, max_length=500, description="why (goes to the audit log)")


class ConsentHistory(_Answer):
    handle: str
    employee_id: str
    policy_version: int = Field(description="the current policy version")
    in_force: bool = Field(description="the latest act gives consent to the current policy version")
    records: list[ConsentRecord]


class ConsentEntry(_Request):
    """``give``: a consent the person gave elsewhere (a signed form), entered with its evidence, for the
    policy version they were shown, which must be the current one. ``withdraw``: recorded whatever the version."""

    action: Literal["give", "withdraw"]
    policy_version: int | None = Field(default=None, ge=1, description="give: the version the person agreed to")
    evidence: str | None = Field(default=None, max_length=500,
                                 description="give: what shows the person agreed, e.g. \"signed form 2026-12-01\"")


class NewPolicy(_Request):
    policy: str = Field(min_length=1, max_length=256 * 1024, description="the policy TOML; its version must be "
                                                                         "higher than the current one")
    note: str | None = Field(default=None, max_length=500, description="why it changed (audit log)")


class Policy(_Answer):
    version: int = Field(description="0 while none is set: nothing may be recorded")
    policy: str | None = Field(description="the TOML as set, or null for version 0")
    created_at: dt.datetime | None
    created_by: str | None
    note: str | None
    consent_text: str | None = Field(description="what employees are shown and consent to, generated from the rules")


class AuditEntry(_Answer):
    id: int
    at: dt.datetime
    actor: str
    action: str
    target: str = Field(description="whom or what it is about: people only as employee:<employee_id>")
    reason: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditVerification(_Answer):
    intact: bool = Field(description="no entry was altered, removed or moved (and the expected head, if given, "
                                     "is still in the chain)")
    first_broken: int | None = Field(description="the first entry that was altered, removed or moved")
    entries: int
    head_hash: str | None = Field(description="keep it where the database's admins cannot write; pass it as "
                                              "expect_head next time")
    expected_head_found: bool | None = Field(description="null when no expect_head was given")


class BuildRequest(_Request):
    name: str = Field(pattern=BUILD_NAME_PATTERN, description="the build's folder under the collector's dataset "
                                                             "folder, and its id; must not be taken")
    mode: Literal["release", "internal"] = "release"
    linkable: bool = Field(default=False, description="a release with the store's pseudonyms (audited)")
    employee: str | None = Field(default=None, max_length=64, description="only this employee's events")
    session: str | None = Field(default=None, max_length=200, description="only this capture session")
    idle_gap_s: float = Field(default=30.0, gt=0, le=86400, description="inactivity that ends an episode")
    formats: list[Literal["parquet", "jsonl"]] = Field(default=["parquet", "jsonl"], min_length=1, max_length=2,
                                                       json_schema_extra={"uniqueItems": True})
    purpose: str = Field(default="dataset build", min_length=1, max_length=200,
                         description="why the raw events are read (audit log)")


    @field_validator("formats")
    @classmethod
    def _each_once(cls, formats: list[str]) -> list[str]:
        if len(set(formats)) != len(formats):
            raise ValueError("name each format at most once")
        return formats


class Build(_Answer):
    name: str
    state: Literal["running", "done", "failed"]
    out: str = Field(description="the dataset folder on the collector's machine")
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    error: str | None = Field(description="state failed: what went wrong and what to do")
    stats: dict[str, Any] | None = Field(description="state done: the dataset's stats.json")

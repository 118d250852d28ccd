"""The values the store hands out: plain frozen dataclasses, safe to pass around and to print."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from ..events import LOSS_REASONS
from ..policy import Policy

__all__ = ["WriteResult", "SessionInfo", "DeviceInfo", "EmployeeInfo", "ConsentRecord", "PolicyRecord",
           "DeviceStatus", "RetentionDeletion", "ErasureReport", "DeletionReport",
           "DeviceCredential"]


@dataclasses.dataclass(frozen=True)
class WriteResult:
    batch_id: str
    stored: int  # events written by this call; 0 for a duplicate
    duplicate: bool


@dataclasses.dataclass(frozen=True)
class SessionInfo:
    session_id: str
    device_id: str
    first_t_wall_ns: int
    last_t_wall_ns: int
    n_events: int


@dataclasses.dataclass(frozen=True)
class DeviceInfo:
    device_id: str
    first_seen: dt.datetime | None  # UTC, server clock: when its first batch arrived (None: none yet)
    last_seen: dt.datetime | None
    n_batches: int
    n_events: int  # events stored now (retention subtracts what it deletes)
    employee_id: str
    hostname: str
    registered_at: dt.datetime
    # Events its agent lost, by reason (every LOSS_REASONS entry, 0 when none), since it was registered:
    # counted from the GAP events of the batches stored; retention does not subtract them.
    lost: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(LOSS_REASONS, 0))


@dataclasses.dataclass(frozen=True)
class EmployeeInfo:
    employee_id: str  # opaque and random; what the audit log names
    handle: str
    display_name: str | None
    created_at: dt.datetime
    erasure_started_at: dt.datetime | None = None  # set while an erasure is under way


@dataclasses.dataclass(frozen=True)
class ConsentRecord:
    id: int
    employee_id: str
    action: str  # "give" | "withdraw"
    policy_version: int
    scope_text: str  # what the employee was shown
    method: str  # "cli" | "portal" | "api" | "paper" (given elsewhere, entered by an admin)
    recorded_at: dt.datetime
    recorded_by: str | None = None  # the actor who entered it; None on records older than this field
    evidence: str | None = None  # method "paper": what shows the person consented

    def as_json(self) -> dict[str, Any]:
        return {"action": self.action, "policy_version": self.policy_version, "method": self.method,
                "recorded_at": self.recorded_at.isoformat(), "scope_text": self.scope_text,
                "recorded_by": self.recorded_by, "evidence": self.evidence}


@dataclasses.dataclass(frozen=True)
class PolicyRecord:
    """A stored policy version. Version 0 is the built-in "no policy yet": nothing may be recorded."""

    version: int
    text: str  # the TOML as the admin wrote it ("" for version 0)
    policy: Policy | None  # parsed; None for version 0
    created_at: dt.datetime | None
    created_by: str | None
    note: str | None


@dataclasses.dataclass(frozen=True)
class DeviceStatus:
    """What the agent polls: may this device record now, and under which policy."""

    device_id: str
    recording_allowed: bool
    reason: str  # plain words, for the person at the desk
    policy: PolicyRecord
    consent: ConsentRecord | None  # the employee's latest consent act

    def as_json(self) -> dict[str, Any]:
        return {"device_id": self.device_id, "recording_allowed": self.recording_allowed, "reason": self.reason,
                "policy_version": self.policy.version, "policy": self.policy.text or None,
                "consent": self.consent.as_json() if self.consent else None}


@dataclasses.dataclass(frozen=True)
class RetentionDeletion:
    date: dt.date  # the UTC date partition deleted
    files: int
    events: int
    sessions: list[str]  # sessions that lost events (or observations)
    observations: int | None = None  # set for an observation partition (frames, UI elements): how many it held

    def describe(self) -> str:
        """In words, as ``deskcorder retention apply`` and the collector's timer print it."""
        if self.observations is not None:
            return (f"observations date={self.date.isoformat()}: {self.files} files, {self.observations} "
                    f"observations, {len(self.sessions)} sessions")
        return f"date={self.date.isoformat()}: {self.files} files, {self.events} events, {len(self.sessions)} sessions"


@dataclasses.dataclass(frozen=True)
class ErasureReport:
    employee_id: str
    key_destroyed: bool  # False when a previous, interrupted run had already destroyed it
    files_deleted: int
    batches: int
    sessions: int
    devices: int
    consents: int
    wal_truncated: bool  # SQLite: the WAL was checkpointed and emptied (None-equivalent True on PostgreSQL)


@dataclasses.dataclass(frozen=True)
class DeletionReport:
    """What ``EventStore.delete_events`` deleted: one session or one UTC day of one employee."""

    employee_id: str
    what: str  # "session" or "day"
    target: str  # the session id, or the date as YYYY-MM-DD
    events: int
    sessions: int  # sessions left with no events, and so deleted
    files_dropped: int  # files that held only deleted events
    files_rewritten: int  # every other file of the employee, re-sealed under their new data key
    files_deleted: int  # old files removed from disk (or the object store)
    wal_truncated: bool  # SQLite: the WAL was checkpointed and emptied (always True on PostgreSQL)


@dataclasses.dataclass(frozen=True)
class DeviceCredential:
    """A device's enrolment (never its secret): whose events it may upload, and whether it was revoked."""

    device_id: str
    employee_id: str
    created_at: dt.datetime  # when it was (last) enrolled
    revoked_at: dt.datetime | None

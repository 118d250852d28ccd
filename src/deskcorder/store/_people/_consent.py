"""Policies and consent: what may be recorded, who agreed to it, and whether a device may record now.

The rule, in one sentence: a device may record at time t when, at t, its
employee's latest consent act was ``give`` for the policy version current at t.
So a new policy version needs fresh consent, and a withdrawal stops recording.

``device_status`` answers it for *now* (the agent polls it every 0.5 s);
``check_recording`` answers it for every event of a batch, using the
``t_wall_ns`` the agent stamped, with ``CLOCK_GRACE_NS`` either side of each
consent period for clock skew between desk and server and for the agent's
poll interval. History tables are append-only: nothing here updates or
deletes a consent or policy row.

What a consent record keeps: the text the person was shown (``scope_text``:
``policy.consent_text``, generated from the enforced rules, the admin's own
words labelled as theirs), how it came (``method``: ``portal`` and ``api``
are the person's own login; ``paper`` is a consent given elsewhere, a signed
form, entered by an admin with its ``evidence``; ``cli`` is left for
withdrawals entered by an admin and for records made before ``paper``
existed) and who entered it (``recorded_by``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, func, select

from ...policy import Policy, PolicyError, check_policy, consent_text, parse_policy
from . import _audit
from .._errors import Conflict, InvalidInput, NotPermitted
from .._db._engine import as_utc
from .._db._status_changes import note as note_status_change
from ._employees import DataKey, get_employee
from .._records import ConsentRecord, DeviceStatus, PolicyRecord
from .._db._tables import consents, devices, employee_keys, employees, policies, recording_pauses

__all__ = ["NO_POLICY", "CLOCK_GRACE_NS", "current_policy", "set_policy", "record_consent", "consent_history",
           "device_status", "check_recording"]

CLOCK_GRACE_NS = 2_000_000_000
ACTIONS = ("give", "withdraw")
METHODS = ("cli", "portal", "api", "paper")
MAX_EVIDENCE = 500
NO_POLICY = PolicyRecord(version=0, text="", policy=None, created_at=None, created_by=None, note=None)
_FOREVER = 2**63 - 1


def _policy(row: Any) -> PolicyRecord:
    return PolicyRecord(row.version, row.body, _parsed(row.body), as_utc(row.created_at), row.created_by,
                        row.note)


@functools.lru_cache(maxsize=32)
def _parsed(text: str) -> Policy:
    # Every status poll reads the current policy: parse each stored text once (Policy is frozen).
    return parse_policy(text)


def current_policy(conn: Connection) -> PolicyRecord:
    row = conn.execute(select(policies).order_by(policies.c.version.desc()).limit(1)).first()
    return NO_POLICY if row is None else _policy(row)


def set_policy(conn: Connection, text: str, actor: str, note: str | None) -> PolicyRecord:
    try:
        parsed = check_policy(parse_policy(text))  # a new policy must also mean what it says
    except PolicyError as exc:
        raise InvalidInput(f"invalid policy: {exc}", field="policy") from exc
    _audit.lock_chain(conn)
    current = conn.execute(select(func.max(policies.c.version))).scalar() or 0
    if parsed.version <= current:
        raise Conflict(f"policy version {parsed.version} is not newer than the current version {current}; "
                       f"set `version = {current + 1}` in the policy file (versions only go up, so every "
                       f"employee's consent names exactly what they agreed to)")
    now = dt.datetime.now(dt.timezone.utc)
    conn.execute(policies.insert(), {"version": parsed.version, "body": text, "created_at": now,
                                     "created_by": actor, "note": note})
    _audit.append(conn, actor=actor, action="policy.set", target=f"policy:v{parsed.version}", reason=note or "",
                  details={"version": parsed.version, "previous_version": current,
                           "retention_days": parsed.retention_days, "app_rules": len(parsed.apps),
                           "sha256": hashlib.sha256(text.encode()).hexdigest()})
    note_status_change(conn, "all")  # every device's answer names the policy
    return PolicyRecord(parsed.version, text, parsed, now, actor, note)


def _consent(row: Any) -> ConsentRecord:
    return ConsentRecord(row.id, row.employee_id, row.action, row.policy_version, row.scope_text, row.method,
                         as_utc(row.recorded_at), row.recorded_by, row.evidence)


def consent_history(conn: Connection, employee_id: str) -> list[ConsentRecord]:
    rows = conn.execute(select(consents).where(consents.c.employee_id == employee_id).order_by(consents.c.id))
    return [_consent(r) for r in rows]


def record_consent(conn: Connection, handle: str, action: str, policy_version: int | None, method: str,
                   actor: str, evidence: str | None = None) -> ConsentRecord:
    """Append one consent act, audited, with ``actor`` as who entered it. ``give`` must name the current
    policy version; method ``paper`` needs ``evidence`` (and no other method takes it)."""
    if action not in ACTIONS:
        raise InvalidInput(f"consent action must be one of {', '.join(ACTIONS)}, got {action!r}", field="action")
    if method not in METHODS:
        raise InvalidInput(f"consent method must be one of {', '.join(METHODS)}, got {method!r}", field="method")
    evidence = (evidence or "").strip() or None
    if method == "paper" and evidence is None:
        raise InvalidInput("a consent given on paper needs its evidence, e.g. evidence \"signed form 2026-12-01\": "
                           "what shows the person agreed", field="evidence")
    if method != "paper" and evidence is not None:
        raise InvalidInput(f"evidence is only for method 'paper' (a consent given elsewhere), not {method!r}",
                           field="evidence")
    if evidence is not None and len(evidence) > MAX_EVIDENCE:
        raise InvalidInput(f"evidence is {len(evidence)} characters; at most {MAX_EVIDENCE}: name the document, "
                           f"not its content", field="evidence")
    _audit.lock_chain(conn)
    employee = get_employee(conn, handle)
    if employee.erasure_started_at is not None:
        raise Conflict(f"employee {handle!r} is being erased; finish it with: deskcorder erase --employee {handle}")
    policy = current_policy(conn)
    if action == "give":
        if policy.version == 0:
            raise Conflict("there is no recording policy to consent to yet; an admin sets one with: "
                           "deskcorder policy set FILE")
        if policy_version != policy.version:
            raise Conflict(f"consent was asked for policy version {policy_version}, but the current policy is "
                           f"version {policy.version}; show the employee version {policy.version} "
                           f"(deskcorder policy show) and ask again")
    # A withdrawal is recorded whatever version the caller saw: it must never fail on a technicality.
    # What they were shown: generated from the rules, the same text everywhere it is shown.
    scope = consent_text(policy.policy, policy.version) if policy.policy else ""
    now = dt.datetime.now(dt.timezone.utc)
    result = conn.execute(consents.insert(), {"employee_id": employee.employee_id, "action": action,
                                              "policy_version": policy.version, "scope_text": scope,
                                              "method": method, "recorded_at": now, "recorded_by": actor,
                                              "evidence": evidence})
    details: dict[str, Any] = {"policy_version": policy.version, "method": method}
    if evidence is not None:
        details["evidence"] = evidence
    _audit.append(conn, actor=actor, action=f"consent.{action}", target=_audit.employee_target(employee.employee_id),
                  reason="", details=details)
    note_status_change(conn, f"employee:{employee.employee_id}")
    return ConsentRecord(result.inserted_primary_key[0], employee.employee_id, action, policy.version, scope,
                         method, now, actor, evidence)


_DEVICE_OWNER = (select(devices.c.employee_id, employees.c.erasure_started_at, employee_keys.c.key_id,
                        employee_keys.c.wrapped_key, employee_keys.c.master_key_id, recording_pauses.c.paused_at)
                 .join(employees, employees.c.employee_id == devices.c.employee_id)
                 .outerjoin(employee_keys, employee_keys.c.employee_id == devices.c.employee_id)
                 .outerjoin(recording_pauses, recording_pauses.c.employee_id == devices.c.employee_id))


def _latest_consent(conn: Connection, employee_id: str) -> ConsentRecord | None:
    row = conn.execute(select(consents).where(consents.c.employee_id == employee_id)
                       .order_by(consents.c.id.desc()).limit(1)).first()
    return None if row is None else _consent(row)


def device_status(conn: Connection, device_id: str) -> DeviceStatus:
    """Three indexed lookups and no writes: cheap enough for every agent to poll twice a second."""
    policy = current_policy(conn)
    owner = conn.execute(_DEVICE_OWNER.where(devices.c.device_id == device_id)).first()
    return _status(device_id, policy, owner, None if owner is None else _latest_consent(conn, owner.employee_id))


_MANY = 500  # devices per query of device_statuses (SQLite's bound parameters)


def device_statuses(conn: Connection, device_ids: list[str]) -> dict[str, DeviceStatus]:
    """``device_status`` of many devices, two queries per ``_MANY``: every held agent asks again at a new policy."""
    policy = current_policy(conn)
    found: dict[str, DeviceStatus] = {}
    for start in range(0, len(device_ids), _MANY):
        chunk = device_ids[start:start + _MANY]
        owners = {r.device_id: r for r in conn.execute(_DEVICE_OWNER.add_columns(devices.c.device_id)
                                                       .where(devices.c.device_id.in_(chunk)))}
        latest = (select(func.max(consents.c.id))
                  .where(consents.c.employee_id.in_({o.employee_id for o in owners.values()}))
                  .group_by(consents.c.employee_id))
        consent_of = {r.employee_id: _consent(r) for r in conn.execute(select(consents).where(consents.c.id.in_(latest)))}
        for device_id in chunk:
            owner = owners.get(device_id)
            found[device_id] = _status(device_id, policy, owner,
                                       None if owner is None else consent_of.get(owner.employee_id))
    return found


def _status(device_id: str, policy: PolicyRecord, owner: Any, consent: ConsentRecord | None) -> DeviceStatus:
    if owner is None:
        return DeviceStatus(device_id, False, "This device is not registered to an employee, so nothing is "
                                              "recorded.", policy, None)
    if owner.erasure_started_at is not None or owner.key_id is None:
        return DeviceStatus(device_id, False, "Your recorded data is being erased; nothing is recorded.", policy,
                            None)
    if policy.version == 0:
        return DeviceStatus(device_id, False, "No recording policy has been set yet, so nothing is recorded.",
                            policy, consent)
    if consent is None:
        reason = f"You have not agreed to recording under policy version {policy.version}, so nothing is recorded."
    elif consent.action == "withdraw":
        reason = (f"You withdrew your consent on {consent.recorded_at:%Y-%m-%d %H:%M} UTC; nothing is recorded "
                  f"until you agree again.")
    elif consent.policy_version != policy.version:
        reason = (f"The recording policy changed to version {policy.version} (you agreed to version "
                  f"{consent.policy_version}); nothing is recorded until you agree to the new one.")
    elif owner.paused_at is not None:  # the portal's pause: consent stays in force, nothing is recorded
        reason = (f"Recording is paused: paused by you in the portal on {as_utc(owner.paused_at):%Y-%m-%d %H:%M} "
                  f"UTC; resume it there.")
    else:
        return DeviceStatus(device_id, True, f"You agreed to policy version {policy.version} on "
                                             f"{consent.recorded_at:%Y-%m-%d %H:%M} UTC; recording what it allows.",
                            policy, consent)
    return DeviceStatus(device_id, False, reason, policy, consent)


def _ns(value: dt.datetime) -> int:
    return int(value.timestamp()) * 1_000_000_000 + value.microsecond * 1000


@dataclasses.dataclass(frozen=True)
class _Period:
    start_ns: int
    end_ns: int  # exclusive; _FOREVER while it lasts
    ended_by: str  # why it ended, for the error message


def _consent_periods(history: list[ConsentRecord], replaced_at: dict[int, int]) -> list[_Period]:
    """When consent was in force: from a give until a withdrawal or until its policy version was replaced."""
    periods: list[_Period] = []
    open_: _Period | None = None
    for c in history:
        at = _ns(c.recorded_at)
        if open_ is not None:
            if at < open_.end_ns:  # this act ends the period before its policy was replaced
                why = "withdrawal of consent" if c.action == "withdraw" else "renewed consent"
                open_ = _Period(open_.start_ns, at, f"{why} at {_iso(at)}")
            periods.append(open_)
            open_ = None
        if c.action == "give":
            end = replaced_at.get(c.policy_version, _FOREVER)
            open_ = _Period(at, end, f"policy version {c.policy_version} was replaced at {_iso(end)}")
    if open_ is not None:
        periods.append(open_)
    return periods


def _iso(ns: int) -> str:
    if ns >= _FOREVER:
        return "never"
    return dt.datetime.fromtimestamp(ns / 1e9, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_recording(conn: Connection, device_id: str, t_wall_ns: pa.ChunkedArray | pa.Array) -> DataKey:
    """The device's employee key, if every event falls inside a consent period; else NotPermitted."""
    owner = conn.execute(_DEVICE_OWNER.where(devices.c.device_id == device_id)).first()
    if owner is None:
        raise NotPermitted(f"device {device_id!r} is not registered to an employee, so its events cannot be stored; "
                           f"enrol it with a token (deskcorder device token --employee HANDLE, then "
                           f"deskcorder agent --enrol-token TOKEN)",
                           field="device_id")
    if owner.erasure_started_at is not None or owner.key_id is None:
        raise NotPermitted(f"the employee of device {device_id!r} is being erased; nothing more is stored for them",
                           field="device_id")
    history = consent_history(conn, owner.employee_id)
    if not any(c.action == "give" for c in history):
        raise NotPermitted(f"the employee of device {device_id!r} has never consented to recording; they consent "
                           f"in the portal at /me (one given on paper is recorded with: deskcorder consent give "
                           f"--employee HANDLE --evidence WHAT)", field="device_id")
    versions = conn.execute(select(policies.c.version, policies.c.created_at).order_by(policies.c.version)).all()
    # A version is replaced when the next higher one is created.
    replaced_at = {v.version: _ns(as_utc(nxt.created_at)) for v, nxt in zip(versions, versions[1:])}
    periods = _consent_periods(history, replaced_at)
    allowed = pa.array([False] * len(t_wall_ns)) if periods else None
    for p in periods:
        inside = pc.and_(pc.greater_equal(t_wall_ns, max(0, p.start_ns - CLOCK_GRACE_NS)),
                         pc.less(t_wall_ns, min(_FOREVER, p.end_ns + CLOCK_GRACE_NS)))
        allowed = pc.or_(allowed, inside)
    if allowed is None or not pc.all(allowed).as_py():
        row = 0 if allowed is None else pc.index(allowed, False).as_py()
        t = t_wall_ns[row].as_py()
        raise NotPermitted(f"event row {row} (t_wall_ns {t}, {_iso(t)}) was recorded while its employee's consent "
                           f"was not in force ({_why_not(t, periods)}); nothing from this batch was stored. Such "
                           f"events must not be recorded: drop them, and send the rest under a new batch_id",
                           field="events.t_wall_ns", row=row)
    return DataKey(owner.employee_id, owner.key_id, owner.wrapped_key, owner.master_key_id)


def _why_not(t: int, periods: list[_Period]) -> str:
    before = [p for p in periods if p.end_ns + CLOCK_GRACE_NS <= t]
    if not before:
        return f"it is before they first consented, at {_iso(periods[0].start_ns)}"
    return f"it is after {before[-1].ended_by}"

"""Admin routes for the records that govern recording: the policy and the hash-chained audit log.

A new policy passes the same checks as ``deskcorder policy set`` and the portal's editor (``policy.check_policy``:
it must mean what its consent text says, so a scope_text promising working hours under a policy without
[hours] is refused, 422 ``body.policy``); its version must be higher than the current one (409).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable

from fastapi import APIRouter, Depends, Query, Request

from ...client import AuditEntry, AuditVerification, NewPolicy, Policy
from ...policy import consent_text
from ...store import EventStore, PolicyRecord
from .._problems import Problem, only_query
from ._auth import admin_problems, stored

__all__ = ["record_routes", "MAX_AUDIT_ENTRIES"]

MAX_AUDIT_ENTRIES = 1000  # one answer's entries at most; page back with `until`


def _policy(record: PolicyRecord) -> dict[str, Any]:
    return {"version": record.version, "policy": record.text or None, "created_at": record.created_at,
            "created_by": record.created_by, "note": record.note,
            "consent_text": consent_text(record.policy, record.version) if record.policy else None}


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """A query's time; without an offset it is read as UTC, the audit log's clock."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.timezone.utc)


def record_routes(router: APIRouter, store: EventStore, admin: Callable[..., str]) -> None:

    @router.get("/v1/admin/policy", response_model=Policy, responses=admin_problems())
    def current_policy(actor: str = Depends(admin)) -> dict[str, Any]:
        """The current policy, with the consent text generated from its rules."""
        return _policy(stored(store.current_policy))

    @router.post("/v1/admin/policy", status_code=201, response_model=Policy, responses=admin_problems({
        400: "the body is not readable JSON",
        409: "the policy's version is not higher than the current one",
        422: "not a valid policy: bad TOML, an unknown key, or rules that contradict its scope_text "
             "(`body.policy`, the message names the rule)"}))
    def set_policy(new: NewPolicy, actor: str = Depends(admin)) -> dict[str, Any]:
        """Store a new policy version; refused when invalid or contradicting its consent text. Audited."""
        return _policy(stored(store.set_policy, new.policy, actor=actor, note=new.note,
                              fields={"policy": "body.policy"}))

    @router.get("/v1/admin/audit", response_model=list[AuditEntry], responses=admin_problems({
        404: "no such employee (`query.employee`)", 422: "a malformed or unknown filter, or `since` after `until`"}))
    def audit(request: Request, actor: str = Depends(admin),
              action: str | None = Query(None, max_length=64, description="only this action, e.g. consent.give"),
              employee: str | None = Query(None, max_length=128, description="only entries about this employee "
                                                                            "(handle)"),
              since: dt.datetime | None = Query(None, description="entries at or after this time (UTC unless an "
                                                                  "offset is given)"),
              until: dt.datetime | None = Query(None, description="entries before this time"),
              limit: int = Query(MAX_AUDIT_ENTRIES, ge=1, le=MAX_AUDIT_ENTRIES,
                                 description="the newest this many of the matching entries")) -> list[dict[str, Any]]:
        """Audit entries oldest first, filtered by action, employee and time; the newest `limit` of them."""
        only_query(request, "action", "employee", "since", "until", "limit")
        since, until = _utc(since), _utc(until)
        if since is not None and until is not None and since > until:
            raise Problem(422, f"since ({since.isoformat()}) is after until ({until.isoformat()}); nothing could "
                               f"match", field="query.until")
        entries = stored(store.audit_entries, action=action, employee=employee, fields={None: "query.employee"})
        # The store filters by action and person; the time window is a slice of what that leaves, and the
        # newest `limit` of those are answered, oldest first, as `deskcorder audit list` prints them.
        matching = [e for e in entries if (since is None or e.at >= since) and (until is None or e.at < until)]
        return [e.as_json() for e in matching[-limit:]]

    @router.get("/v1/admin/audit/verify", response_model=AuditVerification, responses=admin_problems({
        422: "a malformed expect_head, or another query parameter"}))
    def verify_audit(request: Request, actor: str = Depends(admin), expect_head: str | None = Query(
            None, pattern=r"^[0-9a-fA-F]{64}$", description="a head hash printed by an earlier verify: also check "
                                                            "that entry is still in the chain")) -> dict[str, Any]:
        """Check the audit log's hash chain, and optionally that a head hash kept elsewhere is still in it."""
        only_query(request, "expect_head")
        broken = stored(store.verify_audit_chain)
        entries = stored(store.audit_entries)
        found = None if expect_head is None else any(e.hash == expect_head.lower() for e in entries)
        return {"intact": broken is None and found is not False, "first_broken": broken, "entries": len(entries),
                "head_hash": entries[-1].hash if entries else None, "expected_head_found": found}

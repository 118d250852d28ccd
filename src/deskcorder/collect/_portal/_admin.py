"""The admin console, ``/admin/...``: devices and their health, consent coverage, the policy editor,
dataset builds and their cards, the audit log, and activity aggregated over at least k people.

What an admin never gets here: the content of anyone's events. No route in
this module returns an event, a typed character or a window title of one
person; the only read of events (``/admin/activity``) leaves the server as
per-application totals over at least ``K_ANONYMITY`` people, and is itself
audited. Device rows show metadata the collector keeps anyway (hostname,
last upload, event counts).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from markdown_it import MarkdownIt
from markupsafe import Markup

from ...store import AuditEntry, Conflict, EventStore, InvalidInput, StoreError
from .._problems import store_problem
from . import _views
from ._auth import Auth, Posted, Viewer
from ._pages import PageMissing, redirect, render

__all__ = ["admin_router", "STALE_AFTER"]

STALE_AFTER = dt.timedelta(minutes=15)  # a device silent this long is shown as stale
_AUDIT_PAGE = 100
_CARD_FILES = ("DATASET_CARD.md", "dataset_card.md", "card.md", "README.md")
_MAX_CARD_BYTES = 256 * 1024
# CommonMark with tables (the card's figures are tables). "html": False shows raw HTML in a card as text, and
# markdown-it refuses javascript:/data: links, so a card cannot bring markup or script into the console.
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")
_FRONT_MATTER = re.compile(r"\A---\n(.*?\n)---\n", re.DOTALL)


def _health(device: Any, now: dt.datetime) -> str:
    if device.last_seen is None:
        return "never uploaded"
    return "ok" if now - device.last_seen <= STALE_AFTER else f"stale (silent {_age(now - device.last_seen)})"


def _age(delta: dt.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.0f} days"


def _card_text(details: dict[str, Any]) -> str | None:
    """A card the builder wrote: inline in the entry, or as a file in the output folder it names."""
    inline = details.get("card")
    if isinstance(inline, str):
        return inline[:_MAX_CARD_BYTES]
    for key in ("out_dir", "out", "output", "path"):
        value = details.get(key)
        if not isinstance(value, str):
            continue
        for name in _CARD_FILES:
            candidate = Path(value) / name
            try:
                if candidate.is_file() and candidate.stat().st_size <= _MAX_CARD_BYTES:
                    return candidate.read_text(errors="replace")
            except OSError:
                continue
    return None


def _card_html(text: str) -> tuple[str | None, Markup]:
    """A card as its YAML header (the Hugging Face configs, shown as is) and its Markdown body as HTML."""
    header = _FRONT_MATTER.match(text)
    body = text[header.end():] if header else text
    return (header.group(1) if header else None), Markup(_MARKDOWN.render(body))


def admin_router(store: EventStore, auth: Auth) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/admin")
    def overview(request: Request, viewer: Viewer = Depends(auth.admin)) -> Response:
        now = dt.datetime.now(dt.timezone.utc)
        try:
            devices = store.devices()
            coverage = store.portal.consent_coverage()
        except StoreError as exc:
            raise store_problem(exc) from exc
        rows = [{"device": d, "health": _health(d, now),
                 # The store does not keep these yet; shown as n/a rather than guessed.
                 "backlog": getattr(d, "spool_backlog", None), "agent_version": getattr(d, "agent_version", None)}
                for d in devices]
        return render(request, "admin_overview.html", viewer=viewer, devices=rows, coverage=coverage)

    @router.get("/admin/api/coverage")
    def coverage_api(viewer: Viewer = Depends(auth.admin)) -> dict[str, Any]:
        try:
            coverage = store.portal.consent_coverage()
        except StoreError as exc:
            raise store_problem(exc) from exc
        return dict(coverage.__dict__)

    @router.get("/admin/activity")
    def activity(request: Request, viewer: Viewer = Depends(auth.admin)) -> Response:
        try:
            owners = {d.device_id: d.employee_id for d in store.devices()}
            events = store.read_events(actor=viewer.actor, purpose=f"aggregate activity per application, groups of "
                                                                   f"at least {_views.K_ANONYMITY} people")
        except StoreError as exc:
            raise store_problem(exc) from exc
        shown, hidden, people = _views.activity_by_app(events, owners)
        return render(request, "admin_activity.html", viewer=viewer, rows=shown, hidden=hidden, people=people,
                      k=_views.K_ANONYMITY)

    def policy_page(request: Request, viewer: Viewer, *, status: int = 200, text: str | None = None,
                    note: str = "", error: str | None = None, saved: int | None = None) -> Response:
        try:
            history = store.portal.policy_history()
        except StoreError as exc:
            raise store_problem(exc) from exc
        if text is None:
            text = _next_version_draft(history[0].text, history[0].version) if history else _FIRST_POLICY
        return render(request, "admin_policy.html", viewer=viewer, status=status, history=history, text=text,
                      note=note, error=error, saved=saved)

    @router.get("/admin/policy")
    def policy(request: Request, viewer: Viewer = Depends(auth.admin), saved: int | None = None) -> Response:
        return policy_page(request, viewer, saved=saved)

    @router.post("/admin/policy")
    def set_policy(request: Request, posted: Posted = Depends(auth.admin_post)) -> Response:
        text = posted.form.get("policy", "").replace("\r\n", "\n")
        note = posted.form.get("note", "").strip()
        try:
            record = store.set_policy(text, actor=posted.viewer.actor, note=note or None)
        except (InvalidInput, Conflict) as exc:
            return policy_page(request, posted.viewer, status=422 if isinstance(exc, InvalidInput) else 409,
                               text=text, note=note, error=str(exc))
        except StoreError as exc:
            raise store_problem(exc) from exc
        return redirect(f"/admin/policy?saved={record.version}")

    @router.get("/admin/datasets")
    def datasets(request: Request, viewer: Viewer = Depends(auth.admin)) -> Response:
        try:
            builds = list(reversed(store.audit_entries(action="dataset.build")))
        except StoreError as exc:
            raise store_problem(exc) from exc
        return render(request, "admin_datasets.html", viewer=viewer,
                      builds=[(b, _views.dataset_card(b.details)) for b in builds])

    @router.get("/admin/datasets/{entry_id}")
    def dataset_card(request: Request, entry_id: int, viewer: Viewer = Depends(auth.admin)) -> Response:
        try:
            entry = next((e for e in store.audit_entries(action="dataset.build") if e.id == entry_id), None)
        except StoreError as exc:
            raise store_problem(exc) from exc
        if entry is None:
            raise PageMissing(f"No dataset build with audit entry {entry_id}; see /admin/datasets.")
        text = _card_text(entry.details)
        header, body = _card_html(text) if text is not None else (None, None)
        return render(request, "admin_dataset_card.html", viewer=viewer, entry=entry,
                      card=_views.dataset_card(entry.details), card_header=header, card_body=body)

    @router.get("/admin/audit")
    def audit(request: Request, viewer: Viewer = Depends(auth.admin), action: str = "", date: str = "", before: int | None = None
              ) -> Response:
        error = None
        day = None
        if date:
            try:
                day = dt.date.fromisoformat(date)
            except ValueError:
                error = f"date {date!r} is not a date; use YYYY-MM-DD"
        try:
            entries: list[AuditEntry] = store.portal.search_audit(action=action.strip() or None, day=day,
                                                                  before_id=before, limit=_AUDIT_PAGE)
            actions = store.portal.audit_actions()
        except StoreError as exc:
            raise store_problem(exc) from exc
        groups = sorted({a.split(".")[0] for a in actions} | set(actions))
        older = entries[-1].id if len(entries) == _AUDIT_PAGE else None
        return render(request, "admin_audit.html", viewer=viewer, entries=entries, actions=groups, action=action,
                      date=date, error=error, older=older, status=422 if error else 200)

    return router


_FIRST_POLICY = """\
version = 1
scope_text = "Only the applications listed below, on weekdays 08:00-19:00."
retention_days = 90

[[apps]]
wm_class = "Code"

[hours]
days = ["mon", "tue", "wed", "thu", "fri"]
start = "08:00"
end = "19:00"
timezone = "UTC"
"""


def _next_version_draft(text: str, version: int) -> str:
    """The current policy with its version bumped: what an admin edits next (versions only go up)."""
    bumped, n = re.subn(r"(?m)^(\s*version\s*=\s*)\d+", lambda m: f"{m.group(1)}{version + 1}", text, count=1)
    return bumped if n else text

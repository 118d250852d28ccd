"""The admin console, ``/admin/...``: devices and their health, consent coverage, the policy editor,
dataset builds and their cards, the audit log, and activity aggregated over at least k people.

What an admin never gets here: the content of anyone's events. No route in
this module reads an event, a typed character or a window title. The
activity page shows the counts the store keeps at ingest
(``EventStore.activity_totals``, ``store/_db/_aggregates.py``): per-application
totals, only for applications used by at least ``K_ANONYMITY`` people and only
when that many people recorded anything. Reading counts decrypts nothing, so a
view adds no ``events.read`` entry to the audit log (it used to decrypt every
event, audited, 12 s per view on 500 k events).

The dataset pages show what a build wrote to its ``dataset.build`` audit
entry and its card, with the same rule for applications: a build's figures for
one application are shown only when the build says at least ``K_ANONYMITY``
people are behind them (``persons``/``people`` of that application), and none
when the build holds fewer people. Builds record ``apps[app].persons``
(``dataset/_build.py``); older entries, without it, show no per-application
figures (``_apps_of_k_people``). Device
rows show metadata the collector keeps anyway (hostname, last upload, event counts).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from types import SimpleNamespace
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


def _app_people(figures: Any) -> int:
    if isinstance(figures, dict):
        for key in ("persons", "people", "n_people"):
            if isinstance(figures.get(key), int):
                return figures[key]
    return 0  # not recorded: fewer than k cannot be ruled out


def _apps_of_k_people(details: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """A build's entry with its per-application figures kept only for applications of at least k people (the
    build's own counts), and the names kept. The rest are replaced by a count of what was left out."""
    apps = details.get("apps") if isinstance(details.get("apps"), dict) else {}
    build_people = details.get("persons", details.get("people"))
    people = build_people if isinstance(build_people, int) else _views.K_ANONYMITY
    shown, hidden, _ = _views.k_anonymous(
        [SimpleNamespace(app=name, people=_app_people(figures)) for name, figures in apps.items()], people)
    allowed = {a.app for a in shown}
    kept = {name: figures for name, figures in apps.items() if name in allowed}
    note = (f"{hidden} application{'s' if hidden != 1 else ''} not shown: used by fewer than "
            f"{_views.K_ANONYMITY} people in this build, or the build did not record how many")
    out = {**details, **({"apps": {**kept, **({"(not shown)": note} if hidden else {})}} if apps else {})}
    if isinstance(details.get("card"), str):  # a card inline in the entry: its table too
        out["card"] = _card_apps_of_k_people(details["card"], allowed)
    return out, allowed


_APPS_HEADING = "Applications:"


def _card_apps_of_k_people(text: str, allowed: set[str]) -> str:
    """The card's "Applications:" table (``dataset/_card.py``) with only the rows of ``allowed`` applications."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        out.append(lines[i])
        if lines[i].strip() != _APPS_HEADING:
            i += 1
            continue
        i += 1
        while i < len(lines) and not lines[i].startswith("|"):
            out.append(lines[i])
            i += 1
        hidden = 0
        for n, line in enumerate(lines[i:]):
            if not line.startswith("|"):
                break
            name = re.split(r"(?<!\\)\|", line)[1].strip().replace("\\|", "|")
            if n < 2 or name in allowed:  # the header and its rule
                out.append(line)
            else:
                hidden += 1
            i += 1
        if hidden:
            out += ["", f"{hidden} application{'s' if hidden != 1 else ''} not shown: used by fewer than "
                        f"{_views.K_ANONYMITY} people in this build, or the build did not record how many."]
    return "\n".join(out)


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
            totals = store.activity_totals()
        except StoreError as exc:
            raise store_problem(exc) from exc
        shown, hidden, people = _views.k_anonymous(totals.apps, totals.people)
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
                      builds=[(b, _views.dataset_card(_apps_of_k_people(b.details)[0])) for b in builds])

    @router.get("/admin/datasets/{entry_id}")
    def dataset_card(request: Request, entry_id: int, viewer: Viewer = Depends(auth.admin)) -> Response:
        try:
            entry = next((e for e in store.audit_entries(action="dataset.build") if e.id == entry_id), None)
        except StoreError as exc:
            raise store_problem(exc) from exc
        if entry is None:
            raise PageMissing(f"No dataset build with audit entry {entry_id}; see /admin/datasets.")
        details, allowed = _apps_of_k_people(entry.details)
        text = _card_text(details)
        header, body = _card_html(_card_apps_of_k_people(text, allowed)) if text is not None else (None, None)
        return render(request, "admin_dataset_card.html", viewer=viewer, entry=entry, details=details,
                      card=_views.dataset_card(details), card_header=header, card_body=body)

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

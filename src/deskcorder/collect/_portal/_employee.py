"""The employee's pages, ``/me/...``: what is recorded now, consent, pause, own sessions (each one page of
rows at a time) and timeline (a day or a week: time per app, actions per hour), export, deletion of one
session or day, erasure.

No route here takes a person from the URL, the query or the form: whose data
a page shows is the login's employee, always. The one id in a URL, a
session id, is checked against the login's own sessions, and anything else
answers 404, exactly like an id that does not exist. Reads of events go
through ``EventStore.read_events`` with the employee as actor and
"subject access via portal" as purpose, so they appear in the audit log and
in the employee's own export.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask

from ...policy import consent_lines
from ...store import Conflict, EventStore, InvalidInput, NotFound, StoreError
from .._problems import store_problem
from . import _frames, _timeline, _views
from ._auth import COOKIE, Auth, Posted, Viewer
from ._pages import PageMissing, redirect, render, wants_html

__all__ = ["employee_router", "PURPOSE"]

PURPOSE = "subject access via portal"


def _status(store: EventStore, viewer: Viewer) -> dict[str, Any]:
    devices = store.devices(employee=viewer.handle)
    return {"devices": [(d, store.device_status(d.device_id)) for d in devices],
            "paused_since": store.portal.paused_since(viewer.handle),
            "policy": store.current_policy(),
            "history": store.consent_history(viewer.handle)}


def employee_router(store: EventStore, auth: Auth) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def overview(request: Request, viewer: Viewer, *, status: int = 200, error: str | None = None) -> Response:
        try:
            state = _status(store, viewer)
        except StoreError as exc:
            raise store_problem(exc) from exc
        history = state["history"]
        latest = history[-1] if history else None
        in_force = (latest is not None and latest.action == "give"
                    and latest.policy_version == state["policy"].version)
        return render(request, "me_overview.html", viewer=viewer, status=status, error=error, in_force=in_force,
                      policy_words=consent_lines(state["policy"].policy), **state)

    @router.get("/me")
    def me(request: Request, viewer: Viewer = Depends(auth.employee)) -> Response:
        return overview(request, viewer)

    @router.get("/me/api/status")
    def me_status(viewer: Viewer = Depends(auth.employee)) -> dict[str, Any]:
        try:
            state = _status(store, viewer)
        except StoreError as exc:
            raise store_problem(exc) from exc
        since = state["paused_since"]
        return {"employee": viewer.handle, "paused_since": since.isoformat() if since else None,
                "policy_version": state["policy"].version,
                "devices": [status.as_json() for _, status in state["devices"]]}

    @router.post("/me/consent")
    def consent(request: Request, posted: Posted = Depends(auth.employee_post)) -> Response:
        viewer, form = posted.viewer, posted.form
        action = form.get("action", "")
        try:
            version = int(form["policy_version"]) if form.get("policy_version", "").isdigit() else None
            store.record_consent(viewer.handle, action, policy_version=version, method="portal", actor=viewer.actor)
        except (Conflict, InvalidInput) as exc:
            return overview(request, viewer, status=409 if isinstance(exc, Conflict) else 422, error=str(exc))
        except StoreError as exc:
            raise store_problem(exc) from exc
        return redirect("/me")

    @router.post("/me/pause")
    def pause(posted: Posted = Depends(auth.employee_post)) -> Response:
        try:
            store.portal.pause_recording(posted.viewer.handle, actor=posted.viewer.actor)
        except StoreError as exc:
            raise store_problem(exc) from exc
        return redirect("/me")

    @router.post("/me/resume")
    def resume(posted: Posted = Depends(auth.employee_post)) -> Response:
        try:
            store.portal.resume_recording(posted.viewer.handle, actor=posted.viewer.actor)
        except StoreError as exc:
            raise store_problem(exc) from exc
        return redirect("/me")

    @router.get("/me/sessions")
    def sessions(request: Request, viewer: Viewer = Depends(auth.employee),
                 deleted: int | None = Query(None, ge=0, description="events just deleted (after /me/delete)"),
                 ) -> Response:
        try:
            own = store.sessions(employee=viewer.handle)
            hostnames = {d.device_id: d.hostname for d in store.devices(employee=viewer.handle)}
            events = store.read_events(actor=viewer.actor, purpose=PURPOSE, employee=viewer.handle)
        except StoreError as exc:
            raise store_problem(exc) from exc
        return render(request, "me_sessions.html", viewer=viewer,
                      summaries=_views.session_summaries(events, own, hostnames),
                      chart=_views.bar_chart_svg(_views.events_per_day(events)), n_events=events.num_rows,
                      deleted=deleted)

    @router.get("/me/sessions/{session_id}")
    def session(request: Request, session_id: str, page: int = Query(1, ge=1, description="1 for the first rows"),
                viewer: Viewer = Depends(auth.employee)) -> Response:
        try:
            owned = {s.session_id: s for s in store.sessions(employee=viewer.handle)}
            if session_id not in owned:  # someone else's, or none: the same answer
                raise PageMissing(f"You have no recorded session {session_id!r}. Your sessions are listed at "
                                  f"/me/sessions.")
            events = store.read_events(actor=viewer.actor, purpose=PURPOSE, employee=viewer.handle,
                                       session_id=session_id)
            frames, n_frames = _frames.session_frames(store, viewer, session_id)  # thumbnails (observations)
            # What `deskcorder dataset build` replaces besides the detectors' finds (build_from_store).
            known = [d.hostname for d in store.devices()] + [e.handle for e in store.employees()]
        except StoreError as exc:
            raise store_problem(exc) from exc
        # Counted over the whole session (what the dataset replaces), then shown one page of rows at a time.
        typed, titles = _views.dataset_redactions(events, known)
        shown = _timeline.paginate(_views.focus_changes(events), _views.typed_runs(events, known), page)
        if shown is None:
            raise PageMissing(f"This session has no page {page}: see /me/sessions/{session_id}?page=1.")
        return render(request, "me_session.html", viewer=viewer, info=owned[session_id], runs=shown.runs,
                      windows=shown.windows, page=shown, n_events=events.num_rows,
                      typed_replaced=_views.replaced_in_words(typed),
                      titles_replaced=_views.replaced_in_words(titles), frames=frames, n_frames=n_frames)

    @router.get("/me/timeline")
    def timeline(request: Request, day: dt.date | None = Query(None, description="a day, YYYY-MM-DD"),
                 view: Literal["day", "week"] = "day",
                 tz: Annotated[_timeline.Zone, Query(max_length=64, description="an IANA zone: Europe/Berlin")] = "UTC",
                 viewer: Viewer = Depends(auth.employee)) -> Response:
        """One day (or the week holding it) of one's own activity in ``tz``; by default the last day recorded."""
        try:
            own = store.sessions(employee=viewer.handle)
            events = store.read_events(actor=viewer.actor, purpose=PURPOSE, employee=viewer.handle)
        except StoreError as exc:
            raise store_problem(exc) from exc
        return render(request, "me_timeline.html", viewer=viewer, **_timeline.timeline(own, events, day, view, tz))

    @router.post("/me/export")
    def export(posted: Posted = Depends(auth.employee_post)) -> Response:
        viewer = posted.viewer
        fd, name = tempfile.mkstemp(prefix="deskcorder-export-", suffix=".zip")
        os.close(fd)
        path = Path(name)
        try:
            store.export_employee(viewer.handle, path, actor=viewer.actor, reason=PURPOSE)
        except StoreError as exc:
            path.unlink(missing_ok=True)
            raise store_problem(exc) from exc
        # Streamed from disk, and the temp file removed once sent: it is personal data.
        return FileResponse(path, media_type="application/zip", filename=f"deskcorder-{viewer.handle}.zip",
                            headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
                            background=BackgroundTask(path.unlink, missing_ok=True))

    @router.post("/me/delete")
    def delete_part(request: Request, posted: Posted = Depends(auth.employee_post)) -> Response:
        """Delete one of one's own sessions (form field ``session``) or one UTC day (``day``, YYYY-MM-DD)."""
        viewer, form = posted.viewer, posted.form
        try:
            report = store.delete_events(viewer.handle, session_id=form.get("session") or None,
                                         day=form.get("day") or None, actor=viewer.actor,
                                         reason="deletion requested by the employee in the portal")
        except NotFound as exc:  # someone else's session answers exactly like one that does not exist
            raise PageMissing(f"{exc}. Nothing was deleted.") from exc
        except (InvalidInput, Conflict) as exc:
            if not wants_html(request):
                raise store_problem(exc) from exc
            return render(request, "error.html", viewer=viewer, status=422 if isinstance(exc, InvalidInput) else 409,
                          title="Nothing was deleted", message=f"{exc} (field: {getattr(exc, 'field', None) or '-'})")
        except StoreError as exc:
            raise store_problem(exc) from exc
        return redirect(f"/me/sessions?deleted={report.events}")  # the page then says what went

    @router.get("/me/erase")
    def erase_page(request: Request, viewer: Viewer = Depends(auth.employee)) -> Response:
        return render(request, "me_erase.html", viewer=viewer, error=None)

    @router.post("/me/erase")
    def erase(request: Request, posted: Posted = Depends(auth.employee_post)) -> Response:
        viewer = posted.viewer
        if posted.form.get("confirm", "").strip() != viewer.handle:
            return render(request, "me_erase.html", viewer=viewer, status=422,
                          error=f"Type your login, {viewer.handle}, exactly, to confirm. Nothing was erased.")
        try:
            report = store.erase_employee(viewer.handle, actor=viewer.actor,
                                          reason="erasure requested by the employee in the portal")
        except NotFound:
            report = None  # erased meanwhile (another tab): the outcome they asked for
        except StoreError as exc:
            raise store_problem(exc) from exc
        response = render(request, "erased.html", report=report)
        response.delete_cookie(COOKIE, path="/")  # the login went with the account; drop the cookie too
        return response

    return router


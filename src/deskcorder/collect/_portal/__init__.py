"""The transparency portal and admin console, served by the collector next to its API.

Employees log in at ``/login`` and see, under ``/me``, what is being recorded
on their devices right now and under which policy (in plain words), give or
withdraw consent, pause and resume recording, browse their own sessions (apps,
durations, event counts, and the text they typed, with what a dataset would
redact marked), download everything stored about them, and erase it. Admins
(``/admin``) see devices and their health, consent coverage, the policy editor
with its history, dataset builds and their cards, the audit log, and activity
aggregated over at least five people; never one person's events.

Why server-rendered pages and plain HTML forms (no htmx, no JavaScript):
every page here is a read of a few records or one form post, so partial page
updates would buy nothing; without scripts the pages work in any browser,
need no build step and nothing from a CDN, and can carry a
Content-Security-Policy that forbids scripts outright, which matters on pages
that show back text a person typed. The activity chart is an inline SVG drawn
on the server. Templates are Jinja2 with autoescaping (``templates/``), the
one stylesheet is ``static/portal.css``.

Security model (details in ``_auth.py``): server-side logins in the control
database behind a signed, HttpOnly, SameSite=Lax cookie; a per-login CSRF
token in every form; argon2id password hashes; ``/me`` pages take the person
from the login only, and the one id they accept in a URL (a session id) must
be the login's own, else 404. Accounts are created with ``deskcorder portal
add-admin LOGIN`` and ``deskcorder portal set-password HANDLE``.

Modules: ``_auth.py`` (login, cookie, CSRF, who may open what), ``_employee.py``
(``/me``), ``_frames.py`` (their frames), ``_admin.py`` (``/admin``), ``_views.py``
(what pages compute from events and records), ``_timeline.py`` (an employee's day or week, a session's
pages), ``_pages.py`` (templates, headers, error pages).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import Response

from ...store import EventStore
from ._admin import admin_router
from ._auth import COOKIE, PORTAL_KEY_ENV, Auth, load_key
from ._employee import employee_router
from ._frames import frames_router
from ._pages import STATIC_FILES, PageMissing, install_portal_handlers
from ._views import K_ANONYMITY

__all__ = ["mount_portal", "COOKIE", "PORTAL_KEY_ENV", "K_ANONYMITY"]


def mount_portal(app: FastAPI, store: EventStore) -> None:
    """Add the portal's pages (``/``, ``/login``, ``/logout``, ``/me/...``, ``/admin/...``) to the collector."""
    auth = Auth(store, load_key(store.data_dir))
    install_portal_handlers(app)
    app.include_router(auth.router())
    app.include_router(employee_router(store, auth))
    app.include_router(frames_router(store, auth))  # an employee's own frames (_frames.py)
    app.include_router(admin_router(store, auth))

    @app.get("/portal/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in STATIC_FILES:
            raise PageMissing(f"no static file {name!r}")
        body, media_type = STATIC_FILES[name]
        return Response(body, media_type=media_type, headers={"Cache-Control": "public, max-age=3600",
                                                              "X-Content-Type-Options": "nosniff"})

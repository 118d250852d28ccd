"""Rendering: the Jinja2 templates, the headers every portal page carries, and the portal's error answers.

Every page is rendered on the server and carries a Content-Security-Policy
that allows no script at all and only our own stylesheet: typed text shown
back to its author is untrusted input, and Jinja2's autoescaping plus a
script-free policy means a ``<script>`` typed into an editor stays text.
Pages are ``no-store``: they hold personal data and must not linger in caches.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

__all__ = ["SECURITY_HEADERS", "LoginRequired", "Forbidden", "CsrfRefused", "PageMissing", "render", "redirect",
           "wants_html", "install_portal_handlers", "STATIC_FILES"]

_HERE = Path(__file__).parent

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

# Served at /portal/static/<name>; a fixed list, read once, so no path from a URL reaches the disk.
STATIC_FILES = {"portal.css": ((_HERE / "static" / "portal.css").read_bytes(), "text/css; charset=utf-8")}


def _utc(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return "never"
    if isinstance(value, int):  # nanoseconds since the epoch
        value = dt.datetime.fromtimestamp(value / 1e9, dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).strftime(fmt) + " UTC"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


_env = Environment(loader=FileSystemLoader(_HERE / "templates"), autoescape=select_autoescape(["html"]),
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_env.filters["utc"] = _utc
_env.filters["duration"] = _duration
_env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, ensure_ascii=False, sort_keys=True)


def render(request: Request, template: str, *, viewer: Any = None, status: int = 200, **context: Any) -> HTMLResponse:
    html = _env.get_template(template).render(request=request, viewer=viewer, **context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def redirect(url: str) -> RedirectResponse:
    # 303: after a POST the browser GETs the target, so a reload never re-submits the form.
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)


def wants_html(request: Request) -> bool:
    """A browser page (redirect it to /login) rather than an API call (answer 401)."""
    return "/api/" not in request.url.path and "text/html" in request.headers.get("accept", "")


class LoginRequired(Exception):
    """No valid login cookie: pages redirect to /login, API calls get 401."""


class Forbidden(Exception):
    """Logged in, but this role may not open this page (an admin on /me, an employee on /admin)."""


class CsrfRefused(Exception):
    """A POST without this login's CSRF token: refused, nothing changed."""


class PageMissing(Exception):
    """No such page *for this viewer*: also what another person's session id answers."""


def _json(status: int, error: str, field: str | None = None) -> JSONResponse:
    # The collector's one error shape (see collect/_problems.py).
    return JSONResponse({"error": error, "field": field, "row": None}, status_code=status, headers=SECURITY_HEADERS)


def install_portal_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _exc: LoginRequired) -> Response:
        if wants_html(request):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return redirect(f"/login?next={_quote(target)}")
        return _json(401, "log in first: POST /login with your login and password, then send the "
                          "deskcorder_login cookie", field="cookie")

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        if wants_html(request):
            return render(request, "error.html", status=403, title="Not for this account", message=str(exc))
        return _json(403, str(exc))

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, exc: CsrfRefused) -> Response:
        if wants_html(request):
            return render(request, "error.html", status=403, title="Form expired", message=str(exc))
        return _json(403, str(exc), field="csrf_token")

    @app.exception_handler(PageMissing)
    async def _missing(request: Request, exc: PageMissing) -> Response:
        if wants_html(request):
            return render(request, "error.html", status=404, title="Not found", message=str(exc))
        return _json(404, str(exc))


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")

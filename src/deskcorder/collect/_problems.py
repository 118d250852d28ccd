"""The collector's one error shape, and the handlers that put every error into it.

Every 4xx/5xx body is ``{"error": "<what was wrong and how to fix it>",
"field": <the offending field or null>, "row": <event row or null>}``,
including FastAPI's own validation errors and unknown routes.

Text that is not Unicode never reaches a 500: JSON can escape a lone UTF-16
surrogate (``"\\ud800"``) that no UTF-8 text, database or hash can take.
Wherever such a value of a JSON body makes the code fail to encode it, the
answer is a 422 naming the field (``body.token``); and an answer quoting the
client's text (an unknown field's name) escapes it instead of failing.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..store import Conflict, InvalidInput, NotAuthenticated, NotFound, NotPermitted, StoreError, TooManyLogins

_RETRY_AFTER_S = "1"

__all__ = ["Problem", "problem_response", "install_handlers", "store_problem", "unavailable"]

log = logging.getLogger("deskcorder.collect")


class Problem(Exception):
    """An HTTP error answer, raised anywhere in a request and rendered by ``install_handlers``."""

    def __init__(self, status: int, error: str, *, field: str | None = None, row: int | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(error)
        self.status = status
        self.error = error
        self.field = field
        self.row = row
        self.headers = headers


def store_problem(exc: StoreError) -> Problem:
    """The HTTP answer for a store error (see the tree in ``deskcorder.store._errors``)."""
    field = getattr(exc, "field", None)
    if isinstance(exc, NotAuthenticated):
        return Problem(401, str(exc), field=field, headers={"WWW-Authenticate": 'Bearer realm="deskcorder"'})
    if isinstance(exc, NotPermitted):
        return Problem(403, str(exc), field=field, row=exc.row)
    if isinstance(exc, NotFound):
        return Problem(404, str(exc), field=field)
    if isinstance(exc, Conflict):
        return Problem(409, str(exc), field=field)
    if isinstance(exc, InvalidInput):
        return Problem(422, str(exc), field=field)
    if isinstance(exc, TooManyLogins):
        return Problem(429, str(exc), field="Authorization", headers={"Retry-After": str(exc.retry_after_s)})
    return unavailable("a store operation", exc)


def unavailable(doing: str, exc: Exception) -> Problem:
    """The 503 for a failed store (or buffer): the detail, with its paths and SQL, goes to the log only."""
    log.error("%s failed: %s", doing, exc)
    return Problem(503, f"the collector's store is unavailable ({doing} failed); nothing was stored by this "
                        f"request, retry after {_RETRY_AFTER_S} s", headers={"Retry-After": _RETRY_AFTER_S})


def only_query(request: Request, *names: str) -> None:
    """Refuse any other query parameter, and a repeated one (422 naming it): a misspelt filter (``?employe=``)
    would otherwise be dropped silently, and of ``?wait=1&wait=x`` FastAPI reads one and ignores the rest.
    Called in the route, so that the credential is checked first."""
    seen: set[str] = set()
    for name, _value in request.query_params.multi_items():
        if name not in names:
            raise Problem(422, f"unknown query parameter {name!r}; this operation takes "
                               f"{', '.join(names) or 'none'}", field=f"query.{name}")
        if name in seen:
            raise Problem(422, f"query parameter {name!r} is given more than once; give it once",
                          field=f"query.{name}")
        seen.add(name)


def problem_response(status: int, error: str, *, field: str | None = None, row: int | None = None,
                     headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": _utf8(error), "field": None if field is None else _utf8(field), "row": row},
                        status_code=status, headers=headers)


def _utf8(text: str) -> str:
    """``text`` with anything UTF-8 cannot carry (lone surrogates) backslash-escaped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _not_unicode(value: Any, path: str) -> str | None:
    """The path of the first key or string in a decoded JSON document that UTF-8 cannot carry."""
    if isinstance(value, str):
        return None if _utf8(value) == value else path
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{path}.{_utf8(str(key))}"
            if isinstance(key, str) and _utf8(key) != key:
                return name
            if (found := _not_unicode(item, name)) is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if (found := _not_unicode(item, f"{path}.{i}")) is not None:
                return found
    return None


async def _field_not_unicode(request: Request) -> str | None:
    """Which field of this request's JSON body holds the text that failed to encode, if it is there."""
    if not hasattr(request, "_body"):  # the route streamed its body (or read none): nothing to look in
        return None
    try:
        document = await request.json()  # parsed and kept by FastAPI when it read the body
    except ValueError:
        return None
    return _not_unicode(document, "body")


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.error, field=exc.field, row=exc.row, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = ".".join(str(p) for p in first.get("loc", ()))
        return problem_response(422, f"{loc or 'request'}: {first.get('msg', 'invalid request')}",
                                field=loc or None)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            error = (f"no such endpoint {request.url.path}; see /v1/health, /v1/batches, /v1/sessions, /v1/devices, "
                     f"/v1/devices/enrol, /v1/devices/{{device_id}}/status, /v1/employees/{{handle}}/consent, "
                     f"/v1/policy, the admin API under /v1/admin/; /openapi.json lists every operation")
        elif exc.status_code == 405:
            error = f"{request.method} is not allowed on {request.url.path}"
        else:
            error = str(exc.detail)
        return problem_response(exc.status_code, error, headers=getattr(exc, "headers", None))

    @app.exception_handler(UnicodeEncodeError)
    async def _unencodable(request: Request, exc: UnicodeEncodeError) -> JSONResponse:
        field = await _field_not_unicode(request)
        if field is None:  # not the client's text: a fault of ours, answered and logged as one
            return await _unexpected(request, exc)
        return problem_response(422, f"{field} holds text that is not valid Unicode (a lone UTF-16 surrogate "
                                     f"such as \\ud800, which JSON can escape but UTF-8 cannot carry); send "
                                     f"it as UTF-8 text", field=field)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem_response(500, f"internal error ({type(exc).__name__}); nothing was stored by this "
                                     f"request, retry later and report it if it persists")

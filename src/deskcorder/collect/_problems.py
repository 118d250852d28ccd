"""The collector's one error shape, and the handlers that put every error into it.

Every 4xx/5xx body is ``{"error": "<what was wrong and how to fix it>",
"field": <the offending field or null>, "row": <event row or null>}``,
including FastAPI's own validation errors and unknown routes.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..store import Conflict, InvalidInput, NotAuthenticated, NotFound, NotPermitted, StoreError, TooManyLogins

_RETRY_AFTER_S = "1"

__all__ = ["Problem", "problem_response", "install_handlers", "store_problem"]

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
    log.error("store failure: %s", exc)
    return Problem(503, f"the collector's store failed: {exc}", headers={"Retry-After": _RETRY_AFTER_S})


def problem_response(status: int, error: str, *, field: str | None = None, row: int | None = None,
                     headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "field": field, "row": row}, status_code=status, headers=headers)


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
                     f"/v1/policy")
        elif exc.status_code == 405:
            error = f"{request.method} is not allowed on {request.url.path}"
        else:
            error = str(exc.detail)
        return problem_response(exc.status_code, error, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem_response(500, f"internal error ({type(exc).__name__}); nothing was stored by this "
                                     f"request, retry later and report it if it persists")

"""What the admin client raises. ``ClientError`` is the base (a ``deskcorder.DeskcorderError``):

    ClientError             the call did not do what was asked
    ├── TransportError      no answer: the collector is unreachable, timed out, or answered something
    │                       that is not the API (not JSON, not the documented shape)
    └── ApiError            the collector answered an error: ``status``, ``error`` (its words: what was
        │                   wrong and what to do), ``field`` (the offending field or header, or None)
        ├── AuthenticationError  401: no, a malformed or a wrong admin login
        ├── PermissionDenied     403: the login is not an admin account (an employee's, a device's)
        ├── NotFoundError        404: no such employee, device or dataset build
        ├── ConflictError        409: it contradicts what is stored (an existing handle, an old policy
        │                        version, a build name taken, a consent for another version)
        ├── InvalidRequest       400/422: a malformed value; ``field`` names it (``body.ttl_s``, ``policy``)
        ├── RateLimited          429: a login locked after wrong passwords; ``retry_after_s``
        └── ServerUnavailable    5xx: the collector's store failed; ``retry_after_s`` when it said

Converted once, at the boundary (``_client.py``), with ``raise ... from`` the httpx error.
"""

from __future__ import annotations

from .._errors import DeskcorderError

__all__ = ["ClientError", "TransportError", "ApiError", "AuthenticationError", "PermissionDenied", "NotFoundError",
           "ConflictError", "InvalidRequest", "RateLimited", "ServerUnavailable", "error_for"]


class ClientError(DeskcorderError):
    """An admin API call failed; the message says what and what to do."""


class TransportError(ClientError):
    """No usable answer from the collector (connection, timeout, or a body that is not the API's)."""


class ApiError(ClientError):
    """The collector answered an error status with its error body ``{error, field, row}``."""

    def __init__(self, status: int, error: str, *, field: str | None = None, method: str = "",
                 path: str = "", retry_after_s: float | None = None):
        where = f" on {method} {path}" if method else ""
        named = f" (field {field})" if field else ""
        super().__init__(f"{status}{where}{named}: {error}")
        self.status = status
        self.error = error
        self.field = field
        self.retry_after_s = retry_after_s


class AuthenticationError(ApiError):
    """401: send an admin portal login and its password (``deskcorder portal add-admin LOGIN``)."""


class PermissionDenied(ApiError):
    """403: the credential is not an admin's."""


class NotFoundError(ApiError):
    """404: the employee, device or build named does not exist."""


class ConflictError(ApiError):
    """409: the request contradicts what the collector holds; nothing changed."""


class InvalidRequest(ApiError):
    """400/422: a value is malformed; ``field`` names it."""


class RateLimited(ApiError):
    """429: wait ``retry_after_s`` seconds."""


class ServerUnavailable(ApiError):
    """5xx: nothing was changed; retry after ``retry_after_s`` seconds."""


_BY_STATUS: dict[int, type[ApiError]] = {400: InvalidRequest, 401: AuthenticationError, 403: PermissionDenied,
                                         404: NotFoundError, 409: ConflictError, 422: InvalidRequest,
                                         429: RateLimited}


def error_for(status: int) -> type[ApiError]:
    """The exception class for an error status (any other 4xx is a plain ApiError)."""
    if status >= 500:
        return ServerUnavailable
    return _BY_STATUS.get(status, ApiError)

"""Store errors. ``StoreError`` is the base (a ``deskcorder.DeskcorderError``); callers that only need "did it work"
catch that.

    StoreError           the store cannot do what was asked (database unreachable or busy, file missing)
    ├── NotFound         no such employee (or device); the message names the command that creates one
    ├── InvalidInput     a value is malformed (handle, policy TOML, consent action); nothing changed
    │   └── ClockAhead   a batch's event is stamped ahead of the collector's clock (``_events/_clock.py``)
    ├── Conflict         the request contradicts what is stored (an old policy version, a device
    │   │                registered to someone else, an employee being erased); nothing changed
    │   └── BatchConflict  a batch id or session id is already taken by different data
    ├── NotAuthenticated a device's credential or an enrolment token is wrong, unknown, used or expired
    ├── NotPermitted     recording is not allowed for this device, employee or time; nothing was stored
    │   └── DeviceRevoked  the device's credential was revoked by an admin
    ├── TamperedData     an event file fails authentication (altered, truncated, moved, wrong key)
    └── TooManyLogins    a portal login name is locked for a while after repeated wrong passwords

The collector maps them to 404, 422 (ClockAhead too), 409, 409, 401, 403, 403, 503 and 429 (with Retry-After); the CLI prints the
message on one line and exits with status 2.
"""

from __future__ import annotations

from .._errors import DeskcorderError

__all__ = ["StoreError", "NotFound", "InvalidInput", "ClockAhead", "Conflict", "BatchConflict", "NotAuthenticated", "NotPermitted",
           "DeviceRevoked", "TamperedData", "TooManyLogins"]


class StoreError(DeskcorderError):
    """The store could not complete the operation; the message says what and what to do."""


class NotFound(StoreError):
    """The employee or device named does not exist."""


class InvalidInput(StoreError):
    """A value given to the store is malformed; ``field`` names it when there is one."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


class ClockAhead(InvalidInput):
    """An event of a batch is stamped further ahead of the store's clock than the allowed skew
    (``_events/_clock.py``); ``row`` is the first such event. Nothing was stored."""

    def __init__(self, message: str, *, field: str, row: int):
        super().__init__(message, field=field)
        self.row = row


class Conflict(StoreError):
    """The request contradicts stored state; nothing was changed."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


class BatchConflict(Conflict):
    """The batch reuses an id already bound to other data (a batch id with other content, or
    another device's session id). The stored data is untouched."""

    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.field = field


class NotPermitted(StoreError):
    """Recording is not permitted (device not registered, no consent, events outside consent).

    ``field`` and ``row`` locate the first offending value, as for an invalid batch.
    """

    def __init__(self, message: str, *, field: str | None = None, row: int | None = None):
        super().__init__(message)
        self.field = field
        self.row = row


class NotAuthenticated(StoreError):
    """A device credential or enrolment token does not check out (unknown, wrong, used, expired)."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


class DeviceRevoked(NotPermitted):
    """The device authenticated, but an admin revoked it: nothing from it is accepted."""


class TamperedData(StoreError):
    """A stored event file is not what the store wrote: altered, truncated, moved or under another key."""


class TooManyLogins(StoreError):
    """A portal login name is locked for a while after repeated wrong passwords (``_people/_login_throttle.py``)."""

    def __init__(self, message: str, *, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s

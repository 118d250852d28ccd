"""A typed Python client for the collector's admin API (``/v1/admin/...``), over httpx.

    from deskcorder.client import AdminClient

    with AdminClient("http://127.0.0.1:8765", "root", "the-admin-password") as admin:
        admin.add_employee("alice", "Alice Martin")
        token = admin.issue_enrolment_token("alice").token   # deskcorder agent --enrol-token TOKEN
        for entry in admin.audit(action="device.token_issued"):
            print(entry.at, entry.actor, entry.target)

``_client.py`` holds ``AdminClient`` (one method per operation), ``_models.py``
the bodies it sends and gets (the collector documents its OpenAPI spec with the
same models), ``_errors.py`` the exception tree: every error status is an
``ApiError`` naming the status and the field.
"""

from ._client import AdminClient
from ._errors import (
    ApiError,
    AuthenticationError,
    ClientError,
    ConflictError,
    InvalidRequest,
    NotFoundError,
    PermissionDenied,
    RateLimited,
    ServerUnavailable,
    TransportError,
)
from ._models import (
    BUILD_NAME_PATTERN,
    BUILD_STATES,
    AuditEntry,
    AuditVerification,
    Build,
    BuildRequest,
    ConsentEntry,
    ConsentHistory,
    ConsentRecord,
    Device,
    Employee,
    EnrolmentToken,
    LoginToken,
    NewDevice,
    NewEmployee,
    NewPolicy,
    Policy,
    Revocation,
    TokenRequest,
)

__all__ = [
    "AdminClient",
    "ClientError", "TransportError", "ApiError", "AuthenticationError", "PermissionDenied", "NotFoundError",
    "ConflictError", "InvalidRequest", "RateLimited", "ServerUnavailable",
    "LoginToken", "Employee", "NewEmployee", "Device", "NewDevice", "TokenRequest", "EnrolmentToken", "Revocation",
    "ConsentRecord", "ConsentHistory", "ConsentEntry", "Policy", "NewPolicy", "AuditEntry", "AuditVerification",
    "Build", "BuildRequest", "BUILD_NAME_PATTERN", "BUILD_STATES",
]

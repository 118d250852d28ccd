"""store stage: durable, idempotent, encrypted storage of event batches, and the records that govern it.

Events live in Parquet files partitioned by UTC date and device
(``<data_dir>/events/date=YYYY-MM-DD/device=<id>/...``), each encrypted whole
with its employee's data key (AES-256-GCM; keys wrapped by a master key,
``<data_dir>/master.key`` or ``DESKCORDER_MASTER_KEY``). The control database
(``<data_dir>/control.db`` by default, PostgreSQL works too) holds employees,
devices, consent history, policies, the hash-chained audit log, sessions and
the batch manifest, migrated with Alembic on open. See ``_store.py`` for the
durability and idempotency argument, ``_people/_consent.py`` for when recording is
allowed, ``_lifecycle/_erasure.py`` and ``_lifecycle/_retention.py`` for deletion, ``_people/_accounts.py``
for the portal's accounts, logins and recording pauses (``EventStore.portal``),
``_people/_enrolment.py`` for device enrolment tokens, credentials and revocation.
"""

from ._people._accounts import Account, ConsentCoverage, PortalLogin, PortalRecords
from ._people._audit import AuditEntry
from ._errors import (
    BatchConflict,
    ClockAhead,
    Conflict,
    DeviceRevoked,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    NotPermitted,
    StoreError,
    TamperedData,
    TooManyLogins,
)
from ._db._rate_limits import TokenDecision
from ._events._clock import MAX_CLOCK_SKEW_S
from ._events._keys import MASTER_KEY_ENV, FileMasterKey, KeyWrapper, StaticMasterKey
from ._records import (
    ConsentRecord,
    DeviceCredential,
    DeviceInfo,
    DeviceStatus,
    EmployeeInfo,
    ErasureReport,
    PolicyRecord,
    RetentionDeletion,
    SessionInfo,
    WriteResult,
)
from ._store import READ_SCHEMA, EventStore

__all__ = [
    "EventStore", "READ_SCHEMA", "MAX_CLOCK_SKEW_S",
    "WriteResult", "TokenDecision", "SessionInfo", "DeviceInfo", "EmployeeInfo", "ConsentRecord", "PolicyRecord",
    "DeviceStatus", "DeviceCredential", "RetentionDeletion", "ErasureReport", "AuditEntry",
    "PortalRecords", "Account", "PortalLogin", "ConsentCoverage",
    "KeyWrapper", "StaticMasterKey", "FileMasterKey", "MASTER_KEY_ENV",
    "StoreError", "NotFound", "InvalidInput", "ClockAhead", "Conflict", "BatchConflict", "NotPermitted", "TamperedData",
    "NotAuthenticated", "DeviceRevoked", "TooManyLogins",
]

"""store stage: durable, idempotent, encrypted storage of event batches, and the records that govern it.

Events live in Parquet files partitioned by UTC date and device
(``<data_dir>/events/date=YYYY-MM-DD/device=<id>/...``), each encrypted whole
with its employee's data key (AES-256-GCM; keys wrapped by a master key,
``<data_dir>/master.key`` or ``DESKCORDER_MASTER_KEY``). The control database
(``<data_dir>/control.db`` by default, PostgreSQL works too) holds employees,
devices, consent history, policies, the hash-chained audit log, sessions and
the batch manifest, migrated with Alembic on open.

``EventStore`` (``_store.py``: the durability and idempotency argument) is the
one way in; behind it the modules sit by what they hold, each folder's
``__init__`` listing its modules:

``_events/``     the event files: layout, local and object-store backends, sealing, keys, reading back
``_db/``         the control database: tables, engine, migrations, the batch manifest, settings, rate limits
``_people/``     employees and devices, enrolment, consent (when recording is allowed), the audit log,
                 portal accounts and logins (``EventStore.portal``)
``_lifecycle/``  what leaves the store: erasure, selective deletion, retention, subject access export
``_observations/``  observations (frames, UI elements, geometry) beside events: their files, checks and
                 reads, and the hooks ``_lifecycle`` calls; ``EventStore``'s observation methods (``_api.py``)

``_errors.py`` (the error tree), ``_records.py`` (what the methods return) and
``_private.py`` (0700/0600 whatever the umask) serve every plane.
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
    DeletionReport,
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
    "DeviceStatus", "DeviceCredential", "RetentionDeletion", "ErasureReport", "DeletionReport", "AuditEntry",
    "PortalRecords", "Account", "PortalLogin", "ConsentCoverage",
    "KeyWrapper", "StaticMasterKey", "FileMasterKey", "MASTER_KEY_ENV",
    "StoreError", "NotFound", "InvalidInput", "ClockAhead", "Conflict", "BatchConflict", "NotPermitted", "TamperedData",
    "NotAuthenticated", "DeviceRevoked", "TooManyLogins",
]

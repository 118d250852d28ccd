"""Each package's public surface is pinned: adding, renaming or dropping a public name fails here first.

As httpx's exported-members test does: ``__all__`` must equal the list below
(order aside), every name in it must exist, and nothing public-looking may sit
in the package without being listed. Changing a surface is then a visible,
reviewed edit of this file, never a side effect of moving code around.
"""

from __future__ import annotations

import importlib
import types

import pytest

PINNED = {
    "deskcorder": [
        "__version__", "DeskcorderError", "Event", "EVENT_SCHEMA", "EventKind", "InvalidEvents",
    ],
    "deskcorder.capture": [
        "Agent", "AgentConfig", "AgentError", "CaptureBackend", "CaptureUnavailable", "CollectorStatus", "Credential",
        "CREDENTIAL_FILE", "DEFAULT_PAUSE_HOTKEY", "EventSink", "FixedStatus", "HandlerTransport", "HttpTransport",
        "is_password_prompt", "load_credential", "load_device_id", "LOSS_REASONS", "RawEvent", "RecordingStatus",
        "Response", "save_credential", "send_command", "Spool", "SpoolError", "StatusSource", "Transport",
        "TransportError", "Upload", "X11Backend",
    ],
    "deskcorder.client": [
        "AdminClient", "ApiError", "AuditEntry", "AuditVerification", "AuthenticationError", "Build",
        "BUILD_NAME_PATTERN", "BUILD_STATES", "BuildRequest", "ClientError", "ConflictError", "ConsentEntry",
        "ConsentHistory", "ConsentRecord", "Device", "Employee", "EnrolmentToken", "InvalidRequest", "LoginToken",
        "NewDevice", "NewEmployee", "NewPolicy", "NotFoundError", "PermissionDenied", "Policy", "RateLimited",
        "Revocation", "ServerUnavailable", "TokenRequest", "TransportError",
    ],
    "deskcorder.collect": [
        "AgentCadence", "create_app", "MAX_BODY_BYTES", "MAX_INFLIGHT", "RETENTION_INTERVAL_S", "RetentionTimer",
        "run_server",
    ],
    "deskcorder.store": [
        "Account", "AuditEntry", "BatchConflict", "ClockAhead", "Conflict", "ConsentCoverage", "ConsentRecord",
        "DeletionReport", "DeviceCredential", "DeviceInfo", "DeviceRevoked", "DeviceStatus", "EmployeeInfo",
        "ErasureReport",
        "EventStore", "FileMasterKey", "InvalidInput", "KeyWrapper", "MASTER_KEY_ENV", "MAX_CLOCK_SKEW_S",
        "NotAuthenticated", "NotFound", "NotPermitted", "PolicyRecord", "PortalLogin", "PortalRecords", "READ_SCHEMA",
        "RetentionDeletion", "SessionInfo", "StaticMasterKey", "StoreError", "TamperedData", "TokenDecision",
        "TooManyLogins", "WriteResult",
    ],
    "deskcorder.dataset": [
        "ACTION_KINDS", "ACTION_SCHEMA", "build_dataset", "build_dataset_distributed", "build_from_store",
        "build_redactions", "BuildOptions", "DatasetError", "DatasetStats", "ENGINES", "EPISODE_SCHEMA", "FORMATS",
        "KEY_CLASSES", "KEYSTROKE_SCHEMA", "MODES", "OBSERVATION_SCHEMA", "POINTER_SCHEMA", "PSEUDONYM_KEY_FILE",
        "read_table",
        "RELEASE_ACTION_SCHEMA", "RELEASE_EPISODE_SCHEMA", "RELEASE_MIN_PEOPLE", "SPLITS", "TABLES",
    ],
    "deskcorder.privacy": [
        "anonymise_keystrokes", "anonymise_pointer", "FrameRedaction", "FrameRedactor", "PLACEHOLDERS", "Pseudonymizer",
        "PseudonymKeyError", "Redactor", "Span",
    ],
    "deskcorder.fleet": [
        "ACK_WAIT_S", "BufferUnavailable", "check_replicas", "check_stream_name", "CONSUMER", "DUPLICATE_WINDOW_S",
        "IngestWorker", "JetStreamPublisher", "PostgresStatusBus", "PUBLISH_TIMEOUT_S", "RETRY_AFTER_S", "STREAM",
        "WorkerStats",
    ],
}


@pytest.mark.parametrize("package", PINNED)
def test_the_public_names_are_the_pinned_ones(package: str) -> None:
    assert sorted(importlib.import_module(package).__all__, key=str.casefold) == PINNED[package]


@pytest.mark.parametrize("package", PINNED)
def test_every_public_name_exists_and_nothing_public_is_unlisted(package: str) -> None:
    module = importlib.import_module(package)
    assert [name for name in module.__all__ if not hasattr(module, name)] == []
    unlisted = [name for name, value in vars(module).items()
                if not name.startswith("_") and not isinstance(value, types.ModuleType) and name not in module.__all__]
    assert unlisted == []

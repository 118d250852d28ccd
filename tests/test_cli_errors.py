"""One error root: every domain error is a ``DeskcorderError``, and the CLI ends on one as one line, no traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import deskcorder
from deskcorder import DeskcorderError
from deskcorder.capture import AgentError, CaptureUnavailable, SpoolError, TransportError
from deskcorder.dataset import PSEUDONYM_KEY_FILE, DatasetError
from deskcorder.fleet import BufferUnavailable
from deskcorder.policy import PolicyError
from deskcorder.privacy import PseudonymKeyError
from deskcorder.store import EventStore, StoreError
from deskcorder.wire import InvalidBatch

from .privacy_rig import cli, clean_error, populate


@pytest.mark.parametrize("error", [deskcorder.InvalidEvents, InvalidBatch, PolicyError, StoreError, AgentError,
                                   SpoolError, CaptureUnavailable, TransportError, PseudonymKeyError, DatasetError,
                                   BufferUnavailable], ids=lambda e: e.__name__)
def test_every_domain_error_is_a_deskcorder_error(error: type[Exception]) -> None:
    assert issubclass(error, DeskcorderError)


def test_errors_keep_the_standard_class_they_had(tmp_path: Path) -> None:
    assert issubclass(InvalidBatch, ValueError) and issubclass(PolicyError, ValueError)
    assert issubclass(deskcorder.InvalidEvents, ValueError) and issubclass(DatasetError, RuntimeError)


def test_a_pseudonym_key_open_to_others_stops_a_build_before_anything_is_read_or_audited(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with EventStore(data_dir) as store:
        populate(store)
        audited = len(store.audit_entries())
    key = data_dir / PSEUDONYM_KEY_FILE
    built = cli(data_dir, "dataset", "build", "--internal", "--out", str(tmp_path / "first"))
    assert built.returncode == 0, built.stderr  # the key is made 0600 by the first stable build
    with EventStore(data_dir) as store:
        audited = len(store.audit_entries())
    os.chmod(key, 0o644)

    refused = cli(data_dir, "dataset", "build", "--internal", "--out", str(tmp_path / "second"))

    clean_error(refused, str(key), "chmod 600")
    assert len(refused.stderr.strip().splitlines()) == 1
    with EventStore(data_dir) as store:
        assert len(store.audit_entries()) == audited  # no events.read, no dataset.build
    assert not (tmp_path / "second").exists()


def test_a_taken_out_folder_stops_a_build_before_anything_is_read_or_audited(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with EventStore(data_dir) as store:
        populate(store)
        audited = len(store.audit_entries())
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("someone else's\n")

    refused = cli(data_dir, "dataset", "build", "--out", str(taken))

    clean_error(refused, str(taken), "--overwrite")
    with EventStore(data_dir) as store:
        assert len(store.audit_entries()) == audited  # no events.read
    assert sorted(p.name for p in taken.iterdir()) == ["notes.txt"]

"""This device's credential: the secret the collector gave it for an enrolment token, kept in the state dir.

``deskcorder agent --enrol-token TOKEN`` exchanges the one-time token on its
first start (``POST /v1/devices/enrol``, done by the status poller, so an
unreachable collector at first start is retried like any other poll) and
writes ``<state_dir>/credential``: JSON ``{"device_id", "secret",
"employee_id"}``, mode 0600, written to a temp file, fsynced and renamed, so
a crash leaves the old file or the new one, never half of one. Later starts
read it and ignore any ``--enrol-token`` (it was used up anyway). Every
request to the collector then carries ``Authorization: Bearer
<device_id>:<secret>``.

A credential for another device id than the one in ``<state_dir>/device_id``
is ignored: the device must be enrolled again.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from ._errors import AgentError

__all__ = ["Credential", "CREDENTIAL_FILE", "load_credential", "save_credential"]

CREDENTIAL_FILE = "credential"


class Credential:
    """The device's credential as the transport and the status poller share it (set once enrolled)."""

    def __init__(self, device_id: str, secret: str | None = None):
        self.device_id = device_id
        self._secret = secret
        self._lock = threading.Lock()

    @property
    def enrolled(self) -> bool:
        return self._secret is not None

    def set_secret(self, secret: str) -> None:
        with self._lock:
            self._secret = secret

    def headers(self) -> dict[str, str]:
        """The Authorization header, or none before enrolment (the collector then answers 401)."""
        with self._lock:
            secret = self._secret
        return {} if secret is None else {"Authorization": f"Bearer {self.device_id}:{secret}"}


def load_credential(state_dir: Path, device_id: str) -> str | None:
    """The stored secret of ``device_id``, or None when the device is not enrolled from this state dir."""
    path = Path(state_dir) / CREDENTIAL_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise AgentError(f"cannot read the device credential {path}: {exc}; delete it and enrol again with a new "
                         f"token (an admin issues one: deskcorder device token --employee HANDLE)") from exc
    if not isinstance(data, dict) or data.get("device_id") != device_id or not isinstance(data.get("secret"), str):
        return None
    return data["secret"]


def save_credential(state_dir: Path, device_id: str, secret: str, employee_id: str) -> Path:
    """Write the credential atomically, readable by this user only."""
    path = Path(state_dir) / CREDENTIAL_FILE
    tmp = path.with_name(f".{CREDENTIAL_FILE}.{os.getpid()}.tmp")
    body = json.dumps({"device_id": device_id, "secret": secret, "employee_id": employee_id}).encode()
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # an existing temp file keeps its mode through O_CREAT
            os.write(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise AgentError(f"cannot save the device credential to {path}: {exc.strerror or exc}") from exc
    return path

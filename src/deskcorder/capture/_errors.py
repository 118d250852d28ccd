"""The agent's own error (platform and spool errors live next to what raises them)."""

from __future__ import annotations

from .._errors import DeskcorderError

__all__ = ["AgentError", "DeviceRefused"]


class AgentError(DeskcorderError, RuntimeError):
    """The agent cannot start or go on with this configuration; the message says what to change."""


class DeviceRefused(AgentError):
    """The collector refuses this device for good; ``reason`` is the status word (``revoked``, ``not_enrolled``)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason

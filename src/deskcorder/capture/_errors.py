"""The agent's own error (platform and spool errors live next to what raises them)."""

from __future__ import annotations

__all__ = ["AgentError"]


class AgentError(RuntimeError):
    """The agent cannot start or go on with this configuration; the message says what to change."""

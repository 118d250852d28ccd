"""The root of every error deskcorder raises on purpose, so that a caller (the CLI above all) catches one class.

::

    DeskcorderError                 something deskcorder refused or could not do; the message says how to fix it
    ├── InvalidEvents               events.py: events that do not fit the event model
    ├── InvalidBatch                wire.py: a batch that cannot be decoded or is not valid
    ├── PolicyError                 policy.py: a recording policy that cannot be used
    ├── StoreError                  store/_errors.py, and its own tree
    ├── AgentError, SpoolError,     capture/: the agent, its spool, its input backend and its uploads
    │   CaptureUnavailable, TransportError
    ├── PseudonymKeyError           privacy/_pseudonym.py: an unusable pseudonym key file
    ├── DatasetError                dataset/_build.py: a dataset that cannot be built as asked
    ├── BufferUnavailable           fleet/_publisher.py: the JetStream buffer cannot take a batch now
    └── XSessionError, DemoDeclined _xsession.py, _demo.py: the demo's X session

Each keeps the standard class it had before (``ValueError``, ``RuntimeError``)
as a second base, so code that caught that still does. Messages name what was
wrong and the command or change that fixes it: ``deskcorder``'s ``main()``
prints them as one line, without a traceback.
"""

from __future__ import annotations

__all__ = ["DeskcorderError"]


class DeskcorderError(Exception):
    """Something deskcorder refused or could not do; ``str()`` says what, and how to fix it."""

"""deskcorder: consent-first recording of desktop work, turned into AI training datasets.

The pipeline, one subpackage per stage: capture -> collect -> store -> privacy -> dataset (and fleet/, the
collector and writer of fleet mode). Every error deskcorder raises on purpose is a ``DeskcorderError``
(the tree: ``_errors.py``).
"""

from ._errors import DeskcorderError
from .events import Event, EventKind, InvalidEvents

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # EVENT_SCHEMA is Arrow: asked for, not imported, so that `import deskcorder` (and the agent) loads no pyarrow.
    if name == "EVENT_SCHEMA":
        from . import events

        return events.EVENT_SCHEMA
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DeskcorderError", "Event", "EventKind", "EVENT_SCHEMA", "InvalidEvents", "__version__"]

"""deskcorder: consent-first recording of desktop work, turned into AI training datasets.

The pipeline, one subpackage per stage: capture -> collect -> store -> privacy -> dataset (and fleet/, the
collector and writer of fleet mode). Every error deskcorder raises on purpose is a ``DeskcorderError``
(the tree: ``_errors.py``).
"""

from ._errors import DeskcorderError
from .events import EVENT_SCHEMA, Event, EventKind, InvalidEvents

__version__ = "0.1.0"

__all__ = ["DeskcorderError", "Event", "EventKind", "EVENT_SCHEMA", "InvalidEvents", "__version__"]

"""deskcorder: consent-first recording of desktop work, turned into AI training datasets.

The pipeline, one subpackage per stage: capture -> collect -> store -> privacy -> dataset.
"""

from .events import EVENT_SCHEMA, Event, EventKind, InvalidEvents

__version__ = "0.1.0"

__all__ = ["Event", "EventKind", "EVENT_SCHEMA", "InvalidEvents", "__version__"]

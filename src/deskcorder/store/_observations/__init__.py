"""The observation plane: frames, UI elements and geometry (``deskcorder.observations``), stored beside events.

Everything observation-specific in the store lives here; ``EventStore`` has
thin methods that delegate to it, and the lifecycle modules call its hooks.
Observation files are sealed with the person's data key exactly like event
files and kept through the same backend (local disk or an object store, so a
fleet collector writes them straight to the object store, never through
JetStream).

``_layout``     the partition layout (``observations/date=.../device=...``), the Parquet schema and bytes
``_write``      the checks (clock, consent, policy level, session owner, idempotency) and the durable write
``_read``       which manifest-listed files a read selects, decrypted; per-session counts from the manifest
``_lifecycle``  erasure, retention, selective deletion and export of observations
"""

from ._layout import OBSERVATIONS_DIR, observation_schema
from ._read import SessionObservations
from ._write import ObservationWriteResult

__all__ = ["OBSERVATIONS_DIR", "ObservationWriteResult", "SessionObservations", "observation_schema"]

"""collect stage: the HTTP collector that agents upload event batches to.

``create_app(store)`` builds the FastAPI app (endpoints, status codes and the
error shape are documented in ``_app.py``); ``run_server`` serves it with
uvicorn, which is what ``deskcorder serve`` runs, with a ``RetentionTimer``
applying the policy's retention in the background. ``AgentCadence`` is how
often the collector tells every agent to upload and to poll its status.
"""

from ._app import MAX_BODY_BYTES, MAX_INFLIGHT, create_app
from ._people_api import AgentCadence
from ._retention_timer import RETENTION_INTERVAL_S, RetentionTimer
from ._server import run_server

__all__ = ["create_app", "run_server", "RetentionTimer", "AgentCadence", "MAX_BODY_BYTES", "MAX_INFLIGHT",
           "RETENTION_INTERVAL_S"]

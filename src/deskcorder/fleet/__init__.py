"""fleet mode: collectors and writers scaled apart, with NATS JetStream between them as the buffer.

::

    agent --HTTP--> collector x N --publish--> JetStream stream --pull--> writer x M --> EventStore

``_stream``     the stream both sides share: name, subjects, settings, the NATS connection
``_publisher``  ``JetStreamPublisher``: the collector's side (``deskcorder serve --nats``)
``_writer``     ``IngestWorker``: the writer's loop (``deskcorder writer``); its docstring is the design
``_status_bus`` ``PostgresStatusBus``: every status change, made anywhere, wakes the agents held on every collector

Only fleet mode imports this package (it needs nats-py, the ``fleet`` extra):
the embedded collector, the agent and the dataset builder never do.
"""

from ._publisher import PUBLISH_TIMEOUT_S, RETRY_AFTER_S, BufferUnavailable, JetStreamPublisher
from ._status_bus import PostgresStatusBus
from ._stream import ACK_WAIT_S, CONSUMER, DUPLICATE_WINDOW_S, STREAM, check_replicas, check_stream_name
from ._writer import IngestWorker, WorkerStats

__all__ = ["JetStreamPublisher", "PostgresStatusBus", "BufferUnavailable", "IngestWorker", "WorkerStats", "STREAM", "CONSUMER",
           "ACK_WAIT_S", "DUPLICATE_WINDOW_S", "PUBLISH_TIMEOUT_S", "RETRY_AFTER_S", "check_stream_name",
           "check_replicas"]

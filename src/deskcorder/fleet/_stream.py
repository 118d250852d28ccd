"""The JetStream stream both sides of a fleet share: its name, its subjects, its settings, the NATS connection.

The settings and why they are what they are: ``_writer.py``'s docstring.
Collectors (``_publisher.py``) and writers (``_writer.py``) both call
``ensure_stream``, so whichever starts first creates the stream.
"""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING

from ..store import InvalidInput, StoreError

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamContext

    from ..wire import Batch

__all__ = ["STREAM", "CONSUMER", "ACK_WAIT_S", "DUPLICATE_WINDOW_S", "check_replicas", "check_stream_name",
           "connect_nats", "ensure_consumer", "ensure_stream", "message_id", "subject_for"]

log = logging.getLogger("deskcorder.writer")  # the name the writer's log lines have always carried

STREAM = "DESKCORDER_BATCHES"
CONSUMER = "writers"
ACK_WAIT_S = 30.0
DUPLICATE_WINDOW_S = 120.0  # JetStream's default; covers an agent's quick retries and double posts

_STREAM_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def check_stream_name(stream: str) -> str:
    if not _STREAM_NAME.match(stream):
        raise InvalidInput(f"JetStream stream name {stream!r} must be 1-64 characters of A-Z a-z 0-9 _ - "
                           f"(no dots: the name is also the subject prefix)", field="stream")
    return stream


def check_replicas(replicas: int) -> int:
    # JetStream's own limit: a stream is kept on 1 to 5 servers.
    if not 1 <= replicas <= 5:
        raise InvalidInput(f"JetStream stream replicas must be 1 to 5, got {replicas} (production: 3, on a "
                           f"3-node NATS cluster)", field="replicas")
    return replicas


def subject_for(stream: str, device_id: str) -> str:
    # '.' separates subject tokens; device ids may contain dots (and '..' would be an empty token).
    return f"{stream}.{device_id.replace('.', '_')}"


def message_id(batch: Batch) -> str:
    """The JetStream de-duplication id: the batch id, plus its content (see the module docstring)."""
    return f"{batch.batch_id}:{batch.content_hash[:16]}"


async def connect_nats(url: str, *, name: str, on_error_log_every_s: float = 30.0) -> Client:
    """A NATS client that keeps (re)connecting forever; returns once the first connection is up.

    ``pending_size=0``: while disconnected, a publish fails at once (the collector
    answers 503) instead of sitting in a buffer past the answer it was waited for.
    """
    import nats

    last_logged = 0.0

    async def on_error(exc: Exception) -> None:
        nonlocal last_logged
        if time.monotonic() - last_logged >= on_error_log_every_s:
            last_logged = time.monotonic()
            log.warning("%s: NATS at %s: %s (retrying every second)", name, url, exc or type(exc).__name__)

    async def on_disconnected() -> None:
        log.warning("%s: disconnected from NATS at %s", name, url)

    async def on_reconnected() -> None:
        log.warning("%s: reconnected to NATS at %s", name, url)

    return await nats.connect(url, name=name, connect_timeout=2, reconnect_time_wait=1, max_reconnect_attempts=-1,
                              pending_size=0, error_cb=on_error, disconnected_cb=on_disconnected,
                              reconnected_cb=on_reconnected)


async def ensure_stream(js: JetStreamContext, stream: str, *, max_bytes: int = -1, replicas: int = 1,
                        who: str = "deskcorder") -> None:
    """Create the batch stream, or accept the one there (idempotent: every collector and writer calls it)."""
    from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
    from nats.js.errors import APIError, NotFoundError

    config = StreamConfig(name=stream, subjects=[f"{stream}.>"], retention=RetentionPolicy.WORK_QUEUE,
                          storage=StorageType.FILE, discard=DiscardPolicy.NEW, max_bytes=max_bytes,
                          duplicate_window=DUPLICATE_WINDOW_S, num_replicas=replicas,
                          description="deskcorder: acknowledged event batches waiting for a writer")
    try:
        await js.add_stream(config)
        return
    except APIError as exc:  # it exists with other settings (an operator raised max_bytes, say): keep them
        refused = exc
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        hint = "; a single NATS server (not a cluster) takes only --replicas 1" if replicas > 1 else ""
        raise StoreError(f"cannot create the JetStream stream {stream!r} with {replicas} replica(s): "
                         f"{refused.description or refused}{hint}") from refused
    if info.config.retention != RetentionPolicy.WORK_QUEUE:
        raise StoreError(f"the JetStream stream {stream!r} exists with {info.config.retention} retention; "
                         f"fleet mode needs workqueue retention (delete it with `nats stream rm {stream}` "
                         f"once it is empty, or pick another --stream)")
    existing = info.config.num_replicas or 1
    if existing != replicas:
        log.warning("%s: the JetStream stream %r has %d replica(s), not the %d asked for (--replicas); keeping "
                    "it as it is (change it with `nats stream edit %s --replicas %d`)", who, stream, existing,
                    replicas, stream, replicas)


async def ensure_consumer(js: JetStreamContext, stream: str, ack_wait_s: float) -> float:
    """Create (or update) the writers' durable pull consumer; returns the ack_wait in force."""
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
    from nats.js.errors import BadRequestError

    config = ConsumerConfig(durable_name=CONSUMER, name=CONSUMER, ack_policy=AckPolicy.EXPLICIT,
                            deliver_policy=DeliverPolicy.ALL, ack_wait=ack_wait_s, max_deliver=-1,
                            description="deskcorder writers: store each batch, ack after it is durable")
    try:
        info = await js.add_consumer(stream, config)
    except BadRequestError as exc:  # a server that cannot update it in place: use it as it is
        log.warning("keeping the existing consumer %r of stream %r: %s", CONSUMER, stream, exc)
        info = await js.consumer_info(stream, CONSUMER)
    return float(info.config.ack_wait or ack_wait_s)

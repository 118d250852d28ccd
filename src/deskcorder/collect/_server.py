"""Run the collector: one uvicorn server in this process, on a socket bound before it starts.

Transport security (TLS, or plain http on loopback only): ``_transport.py``.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Callable

import uvicorn

from ..store import MAX_CLOCK_SKEW_S, EventStore
from ._app import MAX_BODY_BYTES, MAX_INFLIGHT, create_app
from ._device_auth import DEVICE_BURST, DEVICE_RATE_PER_S
from ._retention_timer import RETENTION_INTERVAL_S, RetentionTimer
from ._transport import check_transport
from ._people_api import AgentCadence

__all__ = ["run_server", "announce"]

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def announce(url: str) -> None:
    # Tests and the demo parse this exact line; keep its wording.
    print(f"deskcorder collector listening on {url}", file=sys.stdout, flush=True)


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, url: str, on_ready: Callable[[str], None]):
        super().__init__(config)
        self._url = url
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_ready(self._url)


def run_server(data_dir: Path | str, host: str = "127.0.0.1", port: int = 8765, *, log_level: str = "info",
               database_url: str | None = None, events_url: str | None = None,
               max_body_bytes: int = MAX_BODY_BYTES, max_inflight: int = MAX_INFLIGHT,
               on_ready: Callable[[str], None] = announce, retention_interval_s: float | None = RETENTION_INTERVAL_S,
               nats_url: str | None = None, stream: str | None = None, replicas: int = 1,
               device_rate_per_s: float = DEVICE_RATE_PER_S, device_burst: int = DEVICE_BURST,
               cadence: AgentCadence = AgentCadence(), tls_cert: Path | str | None = None,
               tls_key: Path | str | None = None, insecure_http: bool = False, create: bool = True,
               max_clock_skew_s: float = MAX_CLOCK_SKEW_S) -> None:
    """Serve the collector until SIGINT/SIGTERM; in-flight batches finish before it returns.

    ``port=0`` picks a free port; ``on_ready`` gets the URL once it accepts connections.
    Retention (the policy's ``retention_days``) runs at start and every
    ``retention_interval_s`` seconds; None or 0 turns it off.
    ``nats_url``: fleet mode, batches are published to the JetStream ``stream``
    for ``deskcorder writer`` processes to store (see ``deskcorder.fleet``), created
    with ``replicas`` JetStream replicas if it does not exist yet.
    ``events_url``: where event files go (see ``EventStore``), recorded on first use.
    ``cadence``: the upload and status intervals every agent is told to use (None: their own).
    ``device_rate_per_s`` / ``device_burst``: each device's batch rate limit (0: none; see ``_device_auth.py``).
    ``tls_cert`` / ``tls_key``: serve https with this PEM certificate and key; without them a
    non-loopback ``host`` is refused unless ``insecure_http`` (``check_transport``).
    ``create``: make a new store when there is none (False: NotFound, see ``EventStore``).
    ``max_clock_skew_s``: batches stamped further ahead of this clock are refused (422).
    Raises OSError when the address cannot be bound, StoreError when the store cannot open,
    ValueError for a bad log level or transport.
    """
    if log_level not in LOG_LEVELS:
        raise ValueError(f"log level {log_level!r}; choose one of {', '.join(LOG_LEVELS)}")
    check_transport(host, tls_cert, tls_key, insecure_http)
    sock = _bind(host, port)  # bound here so port 0 resolves before anyone needs the URL
    try:
        store = EventStore(data_dir, database_url=database_url, events_url=events_url, create=create,
                           max_clock_skew_s=max_clock_skew_s)
    except BaseException:
        sock.close()
        raise
    timer = RetentionTimer(store, retention_interval_s) if retention_interval_s else None
    try:
        if timer is not None:
            timer.start()
        bound_port = sock.getsockname()[1]
        scheme = "http" if tls_cert is None else "https"
        url = f"{scheme}://[{host}]:{bound_port}" if ":" in host else f"{scheme}://{host}:{bound_port}"
        publisher = None
        if nats_url is not None:
            from ..fleet import JetStreamPublisher  # nats-py is only needed in fleet mode

            publisher = JetStreamPublisher(nats_url, stream=stream, replicas=replicas)
        config = uvicorn.Config(create_app(store, max_body_bytes=max_body_bytes, max_inflight=max_inflight,
                                           publisher=publisher, device_rate_per_s=device_rate_per_s,
                                           device_burst=device_burst, cadence=cadence,
                                           database_url=database_url),
                                log_level=log_level, access_log=log_level == "debug",
                                timeout_graceful_shutdown=30,
                                ssl_certfile=None if tls_cert is None else str(tls_cert),
                                ssl_keyfile=None if tls_key is None else str(tls_key))
        # The event loop shares the GIL with the worker threads that decode and store batches; at
        # the default 5 ms switch interval each request step of /v1/health waits behind every busy
        # worker (200 ms seen with 4 hostile bodies on 2 cores). 1 ms keeps the loop answering.
        sys.setswitchinterval(0.001)
        _Server(config, url, on_ready).run(sockets=[sock])
    finally:
        if timer is not None:
            timer.stop()
        sock.close()
        store.close()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets that say they
    # are TCP, and without it every response waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock

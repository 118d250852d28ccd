"""How an encoded batch reaches the collector: one request, one answer, no retries.

Retry, backoff and rate limits live in the uploader above this layer, so a
test can swap the network for a plain function (``HandlerTransport``) and
drive every branch of that logic.

``Connection`` is the agent's HTTP client, for batches and status polls
alike: one keep-alive connection from the standard library. A request costs
a third of what it did through httpx (0.4 against 1.3 ms of CPU, measured),
and the agent makes a few every second all day; nor does it load httpx's
~9 MiB. TLS verifies against the system's certificates (``SSL_CERT_FILE``
names another bundle). No proxy is used: the collector is on the
organisation's own network.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import select
import socket
import ssl
import urllib.parse
from typing import Any, Callable, Mapping, Protocol

from .._errors import DeskcorderError

__all__ = ["Connection", "Response", "Transport", "TransportError", "HttpTransport", "HandlerTransport"]


@dataclasses.dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]  # names lower-cased
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class TransportError(DeskcorderError):
    """No HTTP answer at all (refused, reset, timed out): the batch may or may not have arrived."""


class Transport(Protocol):
    def send(self, body: bytes, content_type: str, timeout: float) -> Response: ...

    def close(self) -> None: ...


class Connection:
    """Requests to ``server_url`` over one keep-alive connection, opened again when the server closed it."""

    USER_AGENT = "deskcorder-agent"

    def __init__(self, server_url: str):
        if not server_url.startswith(("http://", "https://")):
            raise ValueError(f"server URL must start with http:// or https://, got {server_url!r}")
        url = urllib.parse.urlsplit(server_url.rstrip("/"))
        self._tls = url.scheme == "https"
        self._host, self._port = url.hostname or "", url.port
        self._prefix = url.path
        self._conn: http.client.HTTPConnection | None = None
        self._aborted = False

    def request(self, method: str, path: str, *, body: bytes | None = None,
                headers: Mapping[str, str] | None = None, timeout: float) -> Response:
        """One request and its whole answer; TransportError when there is no answer."""
        all_headers = {"User-Agent": self.USER_AGENT, **(headers or {})}
        for attempt in (1, 2):
            if self._aborted:
                raise TransportError("the request was aborted (the agent is stopping)")
            reused = self._open(timeout)
            try:
                assert self._conn is not None
                self._conn.request(method, self._prefix + path, body=body, headers=all_headers)
                r = self._conn.getresponse()
                answer = Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                self.close()
                if reused and attempt == 1:  # the server dropped the idle connection as we reused it
                    continue
                raise TransportError(f"{type(exc).__name__}: {exc}") from exc
            except (OSError, http.client.HTTPException) as exc:  # refused, timed out, TLS, a garbled answer
                self.close()
                raise TransportError(f"{type(exc).__name__}: {exc}") from exc
            if r.will_close:
                self.close()
            return answer
        raise AssertionError("unreachable")

    def _open(self, timeout: float) -> bool:
        """Make sure a connection is open; True when it is one used before."""
        conn = self._conn
        if conn is not None and conn.sock is not None:
            # Readable while idle means the server closed it (or sent junk): start afresh.
            if not select.select([conn.sock], [], [], 0)[0]:
                conn.sock.settimeout(timeout)
                return True
            self.close()
        if self._tls:
            self._conn = http.client.HTTPSConnection(self._host, self._port, timeout=timeout,
                                                     context=ssl.create_default_context())
        else:
            self._conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        try:
            self._conn.connect()
        except OSError as exc:  # refused, unknown host, no route, TLS refused: said as httpx said it
            self.close()
            raise TransportError(f"ConnectError: {exc}") from exc
        return False

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def abort(self) -> None:
        """From another thread: end the request in flight now and refuse new ones (a held status request
        must not keep the agent from stopping). Shutting the socket down wakes the blocked read."""
        self._aborted = True
        conn = self._conn
        sock = conn.sock if conn is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed


class HttpTransport:
    """POST batches to ``<server_url>/v1/batches`` over one keep-alive ``Connection``.

    ``auth`` gives the headers that authenticate the device (``Credential.headers``), asked per request
    because the credential may arrive after the transport was made (first start, enrolment).
    """

    PATH = "/v1/batches"

    def __init__(self, server_url: str, auth: Callable[[], Mapping[str, str]] | None = None):
        self._connection = Connection(server_url)  # refuses a URL that is not http(s) first
        self.url = server_url.rstrip("/") + self.PATH
        self._auth = auth

    def send(self, body: bytes, content_type: str, timeout: float) -> Response:
        headers = {"Content-Type": content_type, **(self._auth() if self._auth else {})}
        return self._connection.request("POST", self.PATH, body=body, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._connection.close()


class HandlerTransport:
    """Answer every request with ``handler(body, content_type)``; raise TransportError to act as the network."""

    def __init__(self, handler: Callable[[bytes, str], Response]):
        self._handler = handler

    def send(self, body: bytes, content_type: str, timeout: float) -> Response:
        return self._handler(body, content_type)

    def close(self) -> None:
        pass

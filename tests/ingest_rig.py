"""What the hostile-input and fuzz tests of the collector share: a batch to break, and what the store holds."""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
from pathlib import Path
from typing import Any

import msgpack

from .helpers import next_utc_midnight_ns

T0 = next_utc_midnight_ns()  # after the consent the tests give
DEVICE = "device-hostile"
NO_RATE_LIMIT = ("--device-rate", "0")  # the tests post back to back, far above an agent's rate
MSGPACK, JSON = "application/msgpack", "application/json"


def good_columns(session: str = "sess-hostile", n: int = 3) -> dict[str, list[Any]]:
    """n key_down events: a batch the collector stores; tests break one part of it."""
    return {"session_id": [session] * n, "seq": list(range(n)), "t_mono_ns": [1000 * i for i in range(n)],
            "t_wall_ns": [T0 + 1000 * i for i in range(n)], "kind": ["key_down"] * n, "key": ["a"] * n,
            "char": ["a"] * n}


def batch(batch_id: str, events: Any, **top: Any) -> dict[str, Any]:
    return {"v": 1, "batch_id": batch_id, "device_id": DEVICE, "events": events, **top}


def encode(obj: Any, content_type: str) -> bytes:
    """JSON keeps lone surrogates as \\uD800 escapes; Python's MessagePack packer refuses them (see raw_str)."""
    return json.dumps(obj).encode() if content_type == JSON else msgpack.packb(obj, use_bin_type=True)


def stored(data_dir: Path) -> tuple[int, int, int, list[str]]:
    """(batches, events in them, devices, event files): unchanged by every refused request."""
    files = sorted(str(p.relative_to(data_dir)) for p in (data_dir / "events").rglob("*") if p.is_file()) \
        if (data_dir / "events").exists() else []
    with contextlib.closing(sqlite3.connect(f"file:{data_dir / 'control.db'}?mode=ro", uri=True)) as db:
        n_batches, n_events = db.execute("select count(*), coalesce(sum(n_events), 0) from batches").fetchone()
        (n_devices,) = db.execute("select count(*) from devices").fetchone()
    return n_batches, n_events, n_devices, files


def exchange(sock: socket.socket, method: str, path: str, body: bytes = b"",
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request and its answer on an open connection, which stays open (keep-alive) unless
    the server closes it: then the next exchange on it fails."""
    head = [f"{method} {path} HTTP/1.1", "Host: collector", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"the collector closed the connection instead of answering {method} {path}")
        data += chunk
    raw_head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *lines = raw_head.decode("latin-1").split("\r\n")
    answer_headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    length = int(answer_headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the collector closed the connection in the middle of an answer")
        rest += chunk
    return int(status_line.split()[1]), answer_headers, rest[:length]

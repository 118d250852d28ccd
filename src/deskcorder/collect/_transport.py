"""How the collector is reached: TLS, or plain http where nothing leaves the machine.

The collector speaks TLS itself when given a certificate (``tls_cert``,
``tls_key``: uvicorn's ``ssl_certfile``/``ssl_keyfile``). Without one it serves
plain http only on a loopback address, where nothing leaves the machine (a
reverse proxy on the same host terminating TLS, docs/architecture.md); any
other address over plain http is refused unless ``insecure_http`` says that
the operator knows the network in between (``check_transport``). Device
secrets, portal passwords and typed text cross that connection.
"""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path

__all__ = ["check_transport", "is_loopback"]


def is_loopback(host: str) -> bool:
    """Whether connections to ``host`` stay on this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


def check_transport(host: str, tls_cert: Path | str | None, tls_key: Path | str | None, insecure_http: bool) -> None:
    """Refuse a set-up that would send credentials and typed text in clear text; ValueError names the fix."""
    if tls_key is not None and tls_cert is None:
        raise ValueError("--tls-key needs --tls-cert (the certificate, PEM) as well")
    if tls_cert is not None:
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(tls_cert, tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"cannot load the TLS certificate {tls_cert}"
                             f"{f' with key {tls_key}' if tls_key else ''}: {exc}; pass a PEM certificate "
                             f"chain with --tls-cert and its unencrypted private key with --tls-key") from exc
        return
    if not is_loopback(host) and not insecure_http:
        raise ValueError(f"refusing to serve {host} over plain http: device secrets, portal passwords and typed "
                         f"text would cross the network in clear text. Pass --tls-cert CERT.pem --tls-key KEY.pem, "
                         f"or listen on 127.0.0.1 behind a reverse proxy that terminates TLS, or pass "
                         f"--insecure-http if the network in between is trusted (docs/architecture.md)")

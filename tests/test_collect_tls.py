"""Transport security of `deskcorder serve`: TLS with a real certificate, and no plain http off loopback.

A self-signed certificate for 127.0.0.1 is made here (``cryptography``); httpx verifies
the collector against exactly that certificate, as an agent configured with it would.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .helpers import _read_until, _stop, enrolment_token, enrol_in

_LISTENING = re.compile(r"listening on (https?://\S+)")


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, valid for a day, and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "deskcorder test collector")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def serve(data_dir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "deskcorder", "serve", "--init", "--data-dir", str(data_dir),
                             "--port", "0", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_the_collector_serves_tls_with_the_given_certificate(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    data_dir = tmp_path / "data"
    enrol_in(data_dir, "alice")
    proc = serve(data_dir, "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        url = _read_until(proc, _LISTENING, 30).group(1)
        assert url.startswith("https://127.0.0.1:"), url
        trusted = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(verify=trusted, timeout=15) as client:
            assert client.get(f"{url}/v1/health").json()["status"] == "ok"
            token = enrolment_token(data_dir, "alice")
            enrolled = client.post(f"{url}/v1/devices/enrol", json={"token": token, "device_id": "device-tls-1",
                                                                     "hostname": "tls-host"})
            assert enrolled.status_code == 200 and enrolled.json()["secret"], enrolled.text
            login = client.get(f"{url}/login")
            assert login.status_code == 200 and "secure" in login.headers["set-cookie"].lower()
        # A client that does not trust the certificate is refused by TLS, before any HTTP:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{url}/v1/health", timeout=15)
        # Plain http to the TLS port gets no HTTP answer.
        with pytest.raises(httpx.HTTPError):
            httpx.get(url.replace("https://", "http://") + "/v1/health", timeout=15)
    finally:
        _stop(proc)


def test_plain_http_off_loopback_is_refused_naming_the_fix(tmp_path: Path) -> None:
    try:
        result = subprocess.run([sys.executable, "-m", "deskcorder", "serve", "--init", "--data-dir",
                                 str(tmp_path / "data"), "--port", "0", "--host", "0.0.0.0"],
                                capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError("serve --host 0.0.0.0 over plain http started serving instead of refusing") from exc
    assert result.returncode == 2, result
    assert "plain http" in result.stderr and "--tls-cert" in result.stderr and "--insecure-http" in result.stderr
    assert "listening" not in result.stdout


def test_a_certificate_that_cannot_be_loaded_is_refused_before_listening(tmp_path: Path) -> None:
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    result = subprocess.run([sys.executable, "-m", "deskcorder", "serve", "--init", "--data-dir",
                             str(tmp_path / "data"), "--port", "0", "--tls-cert", str(tmp_path / "junk.pem")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "cannot load the TLS certificate" in result.stderr, result


def _non_loopback_address() -> str | None:
    for addresses in psutil.net_if_addrs().values():
        for a in addresses:
            if a.family.name == "AF_INET" and not ipaddress.ip_address(a.address).is_loopback:
                return a.address
    return None


def test_with_insecure_http_the_collector_serves_every_interface_and_cookies_stay_secure(tmp_path: Path) -> None:
    proc = serve(tmp_path / "data", "--host", "0.0.0.0", "--insecure-http")
    try:
        url = _read_until(proc, _LISTENING, 30).group(1)
        port = url.rsplit(":", 1)[1]
        local = httpx.get(f"http://127.0.0.1:{port}/login", timeout=15)
        assert local.status_code == 200 and "secure" not in local.headers["set-cookie"].lower()  # same machine
        address = _non_loopback_address()
        if address is None:
            pytest.skip("this machine has no non-loopback IPv4 address to reach the collector by")
        remote = httpx.get(f"http://{address}:{port}/login", timeout=15)
        assert remote.status_code == 200 and "secure" in remote.headers["set-cookie"].lower(), remote.headers
    finally:
        _stop(proc)

"""Secret detectors: private keys, vendor tokens, credentials in URLs, CLI arguments, named values, prose, entropy.

Ordered from most to least certain. A vendor format (``ghp_`` with its
checksum, ``AKIA``, ``xoxb-``, ``hvs.``) is near-proof; a ``password=``
assignment or ``sqlcmd -P`` is strong context; a long high-entropy token with
no context is the catch-all for keys we have no rule for. The families live in
their own modules:

- `_secret_vendors`: vendor token formats (and Azure's identifiable keys
  through Microsoft's secret-masker package);
- `_secret_context`: values named by their context (key=value with any
  secret-ish name, URL query parameters, admin tools' password arguments,
  terse prose such as ``pw: ...``);
- `_secret_entropy`: random-looking tokens, minus checksums, readable base64
  and public keys.

Measured against detect-secrets (Yelp's and Bridgecrew's) and
microsoft-security-utilities-secret-masker on the generated corpus in
benchmarks/corpus/secrets.py (benchmarks/secret_detection.py prints the
table): the rule sets that install as packages are built to scan files and
know few of the typed contexts (CLI arguments, prose, URL parameters); the
secret masker's identifiable Azure formats are the one family we take from a
package rather than write.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ._detectors import Detector
from ._secret_context import find_assignments, find_cli_secrets, find_prose_secrets, find_url_params
from ._secret_entropy import find_high_entropy, looks_random, shannon_entropy
from ._secret_vendors import find_vendor_tokens

__all__ = ["SECRET_DETECTORS", "looks_random", "shannon_entropy"]


# A key pasted into a terminal may be cut off: without its END line we redact to the end of the text.
_PRIVATE_KEY_RE = re.compile(
    r"-----BEGIN[A-Z0-9 ]{0,30} PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END[A-Z0-9 ]{0,30} PRIVATE KEY(?: BLOCK)?-----|\Z)"
    r"|PuTTY-User-Key-File-\d: .*\Z|AGE-SECRET-KEY-1[0-9A-Z]{58}",
    re.DOTALL,
)


def _find_private_keys(text: str) -> Iterator[tuple[int, int]]:
    if "PRIVATE KEY" in text or "PuTTY-User-Key" in text or "AGE-SECRET-KEY" in text:
        for m in _PRIVATE_KEY_RE.finditer(text):
            yield m.span()


_URL_CREDENTIALS_RE = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]{1,20}://([^\s:/?#@]*:[^\s/?#@]+|[^\s:/?#@]{20,})@")


def _find_url_credentials(text: str) -> Iterator[tuple[int, int]]:
    if "@" in text and "://" in text:
        for m in _URL_CREDENTIALS_RE.finditer(text):
            yield m.span(1)


SECRET_DETECTORS: tuple[Detector, ...] = (
    Detector("private_key", "SECRET", 10, _find_private_keys),
    Detector("vendor_token", "SECRET", 20, find_vendor_tokens),
    Detector("url_credentials", "SECRET", 30, _find_url_credentials),
    Detector("cli_secret", "SECRET", 35, find_cli_secrets),
    Detector("secret_assignment", "SECRET", 40, find_assignments),
    Detector("prose_secret", "SECRET", 42, find_prose_secrets),
    Detector("url_parameter", "SECRET", 45, find_url_params),
    Detector("high_entropy", "SECRET", 90, find_high_entropy),
)

"""Entropy: a long token that reads like a key rather than a word, a path, an identifier or a checksum.

The catch-all for keys no vendor rule or name gives away. Shannon entropy
alone cannot tell ``handleSubmitButtonClick2024`` from a key, so a token must
also switch character class like random text does and not spell words (see
`looks_random`). Decided non-secrets, frequent in developer typing:

- hex-only strings (git SHAs, UUIDs, sha256 sums, colours); a hex key is still
  caught behind a secret-named variable or a vendor prefix;
- digests that say they are digests: go.sum ``h1:``, subresource-integrity
  ``sha512-``, ``sha256:`` and ``md5-`` prefixes (published checksums of
  public files);
- base64 that decodes to readable text (``echo aGVsbG8gd29ybGQ= | base64 -d``);
  base64 of ``user:password`` has no spaces and stays a secret;
- public keys and certificates, and URL paths (URL credentials and query
  parameters have their own detectors).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections import Counter
from collections.abc import Iterator

__all__ = ["MIN_TOKEN_LEN", "find_high_entropy", "looks_random", "shannon_entropy"]


def shannon_entropy(s: str) -> float:
    """Bits per character of the string's own character distribution."""
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


_TOKEN_RE = re.compile(r"(?<![A-Za-z0-9+/_=.-])[A-Za-z0-9+/_-]{20,}={0,2}(?![A-Za-z0-9+/_=-])")
_HEXISH_RE = re.compile(r"^[0-9a-fA-F-]+$")
_URL_RE = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
_SEPARATOR_RE = re.compile(r"[+/_=-]")
_SEGMENT_RE = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_SYLLABLE_RE = re.compile(r"[A-Z]?[a-z]{2,}")
_VOWEL_RE = re.compile(r"[aeiouyAEIOUY]")
_CAMEL_WORDS_RE = re.compile(r"^(?:[A-Z]?[a-z]{2,})+\d*$")
_WORD_PART_RE = re.compile(r"^[a-z]{3,}$|^[A-Z]{3,}$|^[A-Z][a-z]{2,}$")

MIN_TOKEN_LEN = 20
# 0.1th percentile of the Shannon entropy of uniformly random strings of length n
# (10,000 samples each, seed 7): a random key scores above it 99.9% of the time,
# while identifiers and words, with their repeated letters, mostly fall below.
# Mixed case: alphabet of 62 (base62/base64); single case: 36 (base36).
_ENTROPY_FLOOR_N = (20, 24, 28, 32, 40, 48, 64, 96, 128)
_ENTROPY_FLOOR_62 = (3.48, 3.74, 3.90, 4.05, 4.37, 4.53, 4.82, 5.15, 5.35)
_ENTROPY_FLOOR_36 = (3.21, 3.44, 3.62, 3.78, 3.98, 4.17, 4.36, 4.62, 4.77)


def _entropy_floor(n: int, mixed_case: bool) -> float:
    table = _ENTROPY_FLOOR_62 if mixed_case else _ENTROPY_FLOOR_36
    if n >= _ENTROPY_FLOOR_N[-1]:
        return table[-1]
    for i in range(1, len(_ENTROPY_FLOOR_N)):
        n1 = _ENTROPY_FLOOR_N[i]
        if n <= n1:
            n0, t0, t1 = _ENTROPY_FLOOR_N[i - 1], table[i - 1], table[i]
            return t0 + (t1 - t0) * (n - n0) / (n1 - n0)
    return table[-1]


def looks_random(token: str) -> bool:
    """A long token that reads like a key rather than a word, a path or an identifier."""
    body = token.rstrip("=")
    n = len(body)
    if n < MIN_TOKEN_LEN or _HEXISH_RE.match(body):
        return False
    has_lower = any(c.islower() for c in body)
    has_upper = any(c.isupper() for c in body)
    digits = sum(c.isdigit() for c in body)
    if not (has_lower or has_upper):
        return False
    parts = [p for p in _SEPARATOR_RE.split(body) if p]
    mixed = has_lower and has_upper
    if len(parts) >= 2 and sum(_is_word_part(p) for p in parts) * 2 >= len(parts):
        return False  # ThinkPad-X1-Carbon-Gen11-21HM0023FR, run_2024_03_15: half the parts are words or numbers
    # Single-case tokens are mostly names: web-7d9f8b6c5d-x2kqp, ubuntu-22-04-amd64.
    if not mixed and (n < 24 or digits < n * 0.15 or any(_WORD_PART_RE.match(p) for p in parts)):
        return False
    # Identifiers are a few long segments that read as words; random strings switch class
    # every 1-2 chars (about 1.9 chars per segment for base62) and rarely spell a syllable.
    segments = sum(len(_SEGMENT_RE.findall(p)) for p in parts)
    per_segment = sum(map(len, parts)) / max(segments, 1)
    if not digits and per_segment >= 2.2:
        return False  # no digit: only the rhythm of random text counts
    if per_segment >= 4.0 or (per_segment >= 3.0 and _wordish(body) >= 0.35):
        return False
    return shannon_entropy(body) >= _entropy_floor(n, mixed)


def _is_word_part(part: str) -> bool:
    return part.isdigit() or (len(part) >= 4 and bool(_CAMEL_WORDS_RE.match(part)))


def _wordish(token: str) -> float:
    """Share of the token in segments of 3+ letters containing a vowel ('Submit', 'Forecast')."""
    return sum(len(s) for s in _SYLLABLE_RE.findall(token) if _VOWEL_RE.search(s)) / len(token)


# Public keys and certificates are meant to be shared; their base64 is not a secret.
_PUBLIC_MATERIAL_RE = re.compile(
    r"(?:ssh-(?:rsa|ed25519|dss)|ecdsa-sha2-nistp\d+|sk-ssh-ed25519@openssh\.com)\s+AAAA[A-Za-z0-9+/=]+"
    r"|-----BEGIN (?:CERTIFICATE|PUBLIC KEY|RSA PUBLIC KEY|PGP PUBLIC KEY BLOCK)-----.*?(?:-----END[^-\n]*-----|\Z)",
    re.DOTALL,
)


# What comes right before a digest of a public file: go.sum, subresource integrity, OCI digests, data: URLs.
_DIGEST_PREFIX_RE = re.compile(r"(?:\bh1:|\bsha(?:1|224|256|384|512)[-:]|\bmd5[-:]|base64,)$", re.IGNORECASE)


_SECRET_WORD_RE = re.compile(r"(?i)pass|secret|token|key|auth|cred")
_DIGEST_TOKEN_PREFIXES = ("sha1-", "sha256-", "sha384-", "sha512-", "md5-")  # inside the token: '-' is a token char


def _is_readable_base64(token: str) -> bool:
    """Base64 of prose or of a small JSON document: '{"name": "widget"}', 'hello world, this is a test'."""
    if len(token) % 4 or len(token) > 4096:
        return False
    try:
        raw = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        return False
    if not raw:
        return False
    text = raw.decode("ascii", errors="replace")
    if not text.isprintable() or text.count(" ") < 2 or _SECRET_WORD_RE.search(text):
        return False  # random bytes; or a decoded config that may hold a credential ('{"auth": ...}')
    return sum(c.isalnum() or c in " \"'{}:,.-!?" for c in text) >= 0.9 * len(text)


def find_high_entropy(text: str) -> Iterator[tuple[int, int]]:
    if len(text) < MIN_TOKEN_LEN or max(map(len, text.split()), default=0) < MIN_TOKEN_LEN:
        return
    urls = [m.span() for m in _URL_RE.finditer(text)] if "://" in text else []
    if "AAAA" in text or "-----BEGIN" in text:
        urls += [m.span() for m in _PUBLIC_MATERIAL_RE.finditer(text)]
    for m in _TOKEN_RE.finditer(text):
        token = m.group()
        if token.startswith("/") or "//" in token or _DIGEST_PREFIX_RE.search(text, max(0, m.start() - 8), m.start()):
            continue
        if token[:7].lower().startswith(_DIGEST_TOKEN_PREFIXES):
            continue
        if any(a <= m.start() < b for a, b in urls):
            continue  # URL paths and public keys are not secrets; URL credentials have their own detector
        if looks_random(token) and not _is_readable_base64(token):
            yield m.span()

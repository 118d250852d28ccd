"""Secret detectors: private keys, vendor tokens, credentials in URLs, CLI flags and assignments, entropy.

Ordered from most to least certain. A vendor prefix (``ghp_``, ``AKIA``,
``xoxb-``, ``sk_live_``) is near-proof; a ``password=`` assignment is strong
context; a long high-entropy token with no context is the catch-all for keys
we have no rule for. The same families as Yelp's detect-secrets (keyword,
high-entropy base64, AWS, GitHub, Slack, Stripe, JWT, private key, basic-auth
URL) written as a few compiled expressions, not the library itself: with its
default plugins and filters detect-secrets 1.5 found 44 of the 80 secrets in
our corpus (it has no rule for CLI flags, prose, URL passwords or newer
vendor prefixes) and is built to scan files line by line, where we redact
short strings in memory at ~80k/s.

Decided non-secrets, documented because they are frequent in developer typing:
hex-only strings (git SHAs, UUIDs, sha256 sums, colours) and identifiers made
of words (``handleSubmitButtonClick2024``). A hex API key is still caught when
it is assigned to a secret-named variable or carries a vendor prefix.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator

from ._detectors import Detector

__all__ = ["SECRET_DETECTORS", "shannon_entropy"]


# -- private keys --------------------------------------------------------------------------------

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


# -- vendor tokens -------------------------------------------------------------------------------

# One alternation: the regex engine tests all prefixes in a single pass.
_VENDOR_TOKEN_RE = re.compile(
    r"(?<![A-Za-z0-9_])(?:"
    r"(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA)[A-Z0-9]{16}"  # AWS access key ids
    r"|gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255}"  # GitHub
    r"|glpat-[A-Za-z0-9_-]{20,}|gl(?:dt|rt|ptt|soat)-[A-Za-z0-9_-]{20,}"  # GitLab
    r"|xox[abposre]-[A-Za-z0-9-]{10,}|xapp-\d-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9_/]{20,}"  # Slack webhooks
    r"|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|whsec_[A-Za-z0-9]{20,}"  # Stripe
    r"|AIza[0-9A-Za-z_-]{35}|ya29\.[0-9A-Za-z_-]{20,}"  # Google API key, OAuth access token
    r"|sk-ant-[A-Za-z0-9_-]{20,}|sk-(?:proj-|svcacct-)?[A-Za-z0-9_-]{20,}"  # Anthropic, OpenAI
    r"|npm_[A-Za-z0-9]{36}|pypi-AgE[A-Za-z0-9_-]{50,}|hf_[A-Za-z0-9]{30,}"  # npm, PyPI, Hugging Face
    r"|SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}|key-[0-9a-zA-Z]{32}"  # SendGrid, Mailgun
    r"|dop_v1_[a-f0-9]{64}|shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}|EAACEdEose0cBA[0-9A-Za-z]+"  # DO, Shopify, Facebook
    r"|eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"  # JWT: base64url of '{"' twice
    r")(?![A-Za-z0-9_])"
)
_VENDOR_HINT_RE = re.compile(
    r"AKIA|ASIA|A3T|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|gh[pousr]_|github_pat_|gl[a-z]{1,3}-|xox|xapp-|hooks\.slack"
    r"|_live_|_test_|whsec_|AIza|ya29\.|sk-|npm_|pypi-|hf_|SG\.|key-|dop_v1_|shp|EAACEd|eyJ"
)


def _find_vendor_tokens(text: str) -> Iterator[tuple[int, int]]:
    if _VENDOR_HINT_RE.search(text):
        for m in _VENDOR_TOKEN_RE.finditer(text):
            yield m.span()


# -- credentials in URLs and on command lines ----------------------------------------------------

_URL_CREDENTIALS_RE = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]{1,20}://([^\s:/?#@]*:[^\s/?#@]+|[^\s:/?#@]{20,})@")
_VALUE = r"""(?:'(?P<q1>[^'\n]+)'|"(?P<q2>[^"\n]+)"|(?P<v>[^\s'"-][^\s'"]*))"""
# Command-line options whose argument is a password. Each names the program where the
# flag is ambiguous elsewhere (-p is a port for ssh/docker run, a password for mysql).
_CLI_SECRET_RES = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"(?<!\S)(?:mysql|mysqldump|mariadb|mysqladmin)\b[^\n]*?\s-p(?P<v>[^\s-]\S*)",  # mysql -pSECRET
        r"(?<!\S)sshpass\s+-p\s*" + _VALUE,
        r"(?<!\S)redis-cli\b[^\n]*?\s-a\s+" + _VALUE,
        r"(?<!\S)(?:docker|podman|helm|oras|skopeo)\s+(?:registry\s+)?login\b[^\n]*?\s(?:-p|--password)[ =]" + _VALUE,
        r"(?<!\S)(?:zip|unzip)\b[^\n]*?\s-P\s*" + _VALUE,
        r"(?<!\S)7z[a]?\b[^\n]*?\s-p(?P<v>\S+)",
        r"(?<!\S)(?:-u|--user)\s+(?:'(?P<q1>[^'\n]+:[^'\n]+)'|\"(?P<q2>[^\"\n]+:[^\"\n]+)\"|(?P<v>[^\s:'\"]+:\S+))",
        r"(?<!\S)-pass(?:in|out)?\s+pass:(?P<v>\S+)",  # openssl
        r"(?<!\S)--?(?:password|passwd|pass|passphrase|token|api-key|apikey|secret|auth-token|access-token"
        r"|client-secret)[ =]" + _VALUE,
    )
)
_CLI_HINT_RE = re.compile(r"\s--?[A-Za-z]")


def _find_url_credentials(text: str) -> Iterator[tuple[int, int]]:
    if "@" in text and "://" in text:
        for m in _URL_CREDENTIALS_RE.finditer(text):
            yield m.span(1)


def _find_cli_secrets(text: str) -> Iterator[tuple[int, int]]:
    if _CLI_HINT_RE.search(text):
        for pattern in _CLI_SECRET_RES:
            for m in pattern.finditer(text):
                groups = m.groupdict()
                for name in ("q1", "q2", "v"):
                    if groups.get(name):
                        yield m.span(name)
                        break


# -- secrets named by their context --------------------------------------------------------------

_SECRET_WORDS = (
    r"pass(?:wor)?d|passwd|passphrase|passcode|secret|token|api[_-]?key|apikey|access[_-]?key|secret[_-]?key"
    r"|private[_-]?key|auth[_-]?key|signing[_-]?key|encryption[_-]?key|account[_-]?key|client[_-]?secret"
    r"|credentials?|(?<![A-Za-z])pin|_pwd|(?<![A-Za-z])auth|(?<![A-Za-z])pass"
    # the word in other languages people type config and chat in
    r"|(?<![A-Za-z])mdp|passwort|kennwort|wachtwoord|senha|contrase\u00f1a|contrasena|has\u0142o|haslo"
)
# The end of a key (a secret word), optional closing quote, separator, value. Anchored on
# the word rather than the key's start: scanning is 5x faster, and the key is found by
# walking back over [\w.-] (see _key_start).
_ASSIGNMENT_RE = re.compile(
    r"((?:" + _SECRET_WORDS + r")(?:[_-]?(?:base|value|b64|base64|hex|raw|plain|plaintext|string|str|bytes|data))?)"
    r"[\"']?[ \t]*(?:=|:=|:|=>|->)[ \t]*"
    r"(?:\"([^\"\n]*)\"|'([^'\n]*)'|([^\s\"',;()\[\]{}]+))",
    re.IGNORECASE,
)
# Searched in text.lower(): a case-insensitive alternation is ~8x slower in `re`.
_ASSIGNMENT_HINT_RE = re.compile(
    r"pass|secret|token|key|credential|pin|pw|auth|mdp|kennwort|wachtwoord|senha|contrase|has\u0142o|haslo"
)
# Values that are not secrets but a reference to one, a type, or a template.
_NOT_A_VALUE_RE = re.compile(
    r"(?i)^(?:none|null|nil|true|false|undefined|required|optional|str|string|bytes|int|bool|any|secretstr"
    r"|include|same-origin|omit"  # fetch() credentials modes
    r"|hidden|redacted|masked|\*+|x{3,}|\.\.\.+|<[^>]*>|\$\{.*\}|\$\w+|\{\{.*\}\}|%\(?\w*\)?s|\{\w*\}"
    r"|your[_-]?\w*|process\.env\.\w+|env\(.*|os\.environ.*|getenv.*"
    r"|(?:/|~/|\./|\.\./|[A-Za-z]:\\)[^:]*)$"  # a path to a key file is not the key (the home-path detector sees it)
)
_CODE_REFERENCE_RE = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+$|^[A-Za-z_]+$")
# 'the wifi password is Tr0ub4dor&3': prose; only a word that does not read like a word counts.
_PROSE_PASSWORD_RE = re.compile(
    r"(?i)\b(?:password|passcode|passphrase|passwort|kennwort|mot de passe|mdp|contrase\u00f1a|senha|pin|pw)"
    r"\s+(?:is|was|est|ist|es|for \S+ is)\s+[\"']?([^\s\"']+)"
)
_BEARER_RE = re.compile(r"(?i)\b(?:bearer|basic|token)\s+([A-Za-z0-9._~+/-]{16,}=*)")
_PASSWORD_KEY_RE = re.compile(r"(?i)(?:pass(?:wor)?d|passwd|passphrase|passcode)$")
_METADATA_KEY_RE = re.compile(r"(?i)(?:^pwd$|^oldpwd$|tokens$|tokenizer|_type$|_url$|_uri$|_file$|_path$|_name$|_len$)")


def _is_secret_value(key: str, sep_is_colon: bool, value: str, rest_of_line: str) -> bool:
    if len(value) < 3 or _NOT_A_VALUE_RE.match(value):
        return False
    if rest_of_line[:1] in ("(", "["):  # password = getpass(...), token = headers["x"]
        return False
    if _CODE_REFERENCE_RE.match(value) and not any(c.isdigit() for c in value):
        # `password=pw` / `token = settings.TOKEN` in code is a variable; in env files
        # (UPPER_CASE key) a bare word is the value itself, and in YAML (`password: hunter`)
        # too when nothing but a comment follows ("Top secret: the launch..." is prose).
        if key.isupper():
            return True
        return sep_is_colon and "." not in value and rest_of_line.strip()[:1] in ("", "#", ",", "}")
    return True


def _at_line_start(text: str, pos: int) -> bool:
    line_start = text.rfind("\n", 0, pos) + 1
    return text[line_start:pos].strip(" \t-") == ""


def _key_start(text: str, pos: int) -> int:
    stop = max(0, pos - 128)  # no real key is longer; bounds the walk on adversarial input
    while pos > stop and (text[pos - 1].isalnum() or text[pos - 1] in "_.-"):
        pos -= 1
    return pos


def _find_assignments(text: str) -> Iterator[tuple[int, int]]:
    if not _ASSIGNMENT_HINT_RE.search(text.lower()):
        return
    if "=" in text or ":" in text or "->" in text:
        yield from _find_key_values(text)
    if " " in text:
        yield from _find_prose_secrets(text)


def _find_key_values(text: str) -> Iterator[tuple[int, int]]:
    for m in _ASSIGNMENT_RE.finditer(text):
        key_start = _key_start(text, m.start(1))
        key = text[key_start:m.end(1)]
        if _METADATA_KEY_RE.search(key):
            continue
        g = 2 if m.group(2) is not None else 3 if m.group(3) is not None else 4
        value = m.group(g)
        quoted = g in (2, 3)
        sep_is_colon = ":" in text[m.end(1):m.start(g)] and "=" not in text[m.end(1):m.start(g)]
        eol = text.find("\n", m.end())
        rest_of_line = text[m.end():eol if eol >= 0 else len(text)]
        if quoted:
            ok = len(value) >= 3 and not _NOT_A_VALUE_RE.match(value)
        elif sep_is_colon and _PASSWORD_KEY_RE.search(key) and _at_line_start(text, key_start):
            # YAML/INI `passphrase: correct horse battery staple`: the value is the rest of the line.
            value = (value + rest_of_line).split(" #", 1)[0].rstrip()
            ok = _is_secret_value(key, True, value.split(" ", 1)[0], "")
        else:
            ok = _is_secret_value(key, sep_is_colon, value, rest_of_line)
        if ok:
            yield m.start(g), m.start(g) + len(value)


def _find_prose_secrets(text: str) -> Iterator[tuple[int, int]]:
    for m in _PROSE_PASSWORD_RE.finditer(text):
        value = m.group(1).rstrip(".,;:)")  # sentence punctuation; '!' and '?' are common in passwords
        # "the password is wrong" is prose; "the password is hunter2" is not.
        if len(value) >= 4 and (not value.isalpha() or (value[1:] != value[1:].lower() and not value.isupper())):
            yield m.start(1), m.start(1) + len(value)
    for m in _BEARER_RE.finditer(text):
        value = m.group(1)
        if any(c.isdigit() for c in value) and not value.isalpha():
            yield m.span(1)


# -- entropy -------------------------------------------------------------------------------------


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


def _find_high_entropy(text: str) -> Iterator[tuple[int, int]]:
    urls = [m.span() for m in _URL_RE.finditer(text)] if "://" in text else []
    if "AAAA" in text or "-----BEGIN" in text:
        urls += [m.span() for m in _PUBLIC_MATERIAL_RE.finditer(text)]
    for m in _TOKEN_RE.finditer(text):
        token = m.group()
        if token.startswith("/") or "//" in token or text[max(0, m.start() - 7):m.start()] == "base64,":
            continue
        if any(a <= m.start() < b for a, b in urls):
            continue  # URL paths and public keys are not secrets; URL credentials have their own detector
        if looks_random(token):
            yield m.span()


SECRET_DETECTORS: tuple[Detector, ...] = (
    Detector("private_key", "SECRET", 10, _find_private_keys),
    Detector("vendor_token", "SECRET", 20, _find_vendor_tokens),
    Detector("url_credentials", "SECRET", 30, _find_url_credentials),
    Detector("cli_secret", "SECRET", 35, _find_cli_secrets),
    Detector("secret_assignment", "SECRET", 40, _find_assignments),
    Detector("high_entropy", "SECRET", 90, _find_high_entropy),
)

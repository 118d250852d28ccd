"""Secrets named by what is typed around them: key=value, URL parameters, CLI password arguments, prose.

No vendor format tells these apart from any other string; the *name* does.
A name is judged word by word (``FOO_KEY``, ``fooKey``, ``foo-key``,
``foo.key`` and ``Key`` all end in the word ``key``):

- strong names end in a word that only ever holds a secret (``password``,
  ``passwd``, ``secret``, ``token``, ``passphrase``, ``api_key``,
  ``access_key``, ``private_key``...): any value that is not a placeholder or a
  reference counts;
- weak names end in a word that often does (``key``, ``auth``, ``sig``,
  ``salt``, ``hmac``, ``pin``): the value must also look generated (random,
  hex, UUID, base64, letters and digits mixed), so ``sort_key=created_at`` and
  ``Key: orders/2024`` stay;
- names with a qualifier before the word that makes it public or a cursor
  (``public_key``, ``primary_key``, ``page_token``, ``max_tokens``) or after it
  that makes it metadata (``token_ttl``, ``key_id``, ``secret_name``) are not
  secrets.

Values that are not a secret but point to one (``${DB_PASS}``, ``$TOKEN``,
``{{ .Values.key }}``, ``process.env.KEY``, ``<your-token>``, ``xxxx``,
``****``) are kept. A default that is *assigned* (``password=changeme``) is
redacted: default passwords stay in use.

Command lines: each admin tool's own password argument (``net user NAME
PASS``, ``sqlcmd -P``, ``ldapsearch -w``, ``smbclient -U user%pass``,
``xfreerdp /p:``, ``echo PASS | sudo -S``, ``htpasswd -b``...). A flag that is
ambiguous across tools (``-p`` is a port for ssh, a password for mysql) is
only read after the tool that gives it that meaning.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import unquote

from ._secret_entropy import looks_random

__all__ = ["find_assignments", "find_cli_secrets", "find_prose_secrets", "find_url_params", "secret_name"]

# -- names ---------------------------------------------------------------------------------------

_NAME_WORD_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
# A name ending in one of these (after qualifiers such as _value, _b64, _prod, 2) holds a secret.
_STRONG_ENDINGS = ("password", "passwd", "passphrase", "passcode", "secret", "token", "apikey", "credential",
                   "credentials", "passwort", "kennwort", "wachtwoord", "senha", "contrasena", "haslo")
_STRONG_WORDS = frozenset({"pwd", "pw", "pass", "creds", "mdp", "pword", "pswd", "psw"})
_WEAK_WORDS = frozenset({"key", "auth", "sig", "signature", "salt", "hmac", "pin", "cookie"})
# 'key' after one of these is as strong as 'password': api_key, secret_key, signing_key...
_KEY_PREFIXES = frozenset({
    "api", "access", "secret", "private", "signing", "sign", "encryption", "enc", "master", "auth", "account",
    "client", "license", "licence", "app", "service", "session", "hmac", "jwt", "webhook", "admin", "root",
    "deploy", "crypto", "cipher", "aes", "storage", "shared", "subscription", "sas", "consumer", "write", "read",
    "ingest", "server", "integration", "live", "prod", "mac", "decryption", "wrapping", "kms", "sendgrid",
})
# Before 'key'/'token': the value is public or a cursor, not a secret.
_PUBLIC_PREFIXES = frozenset({
    "public", "publishable", "pub", "primary", "sort", "foreign", "partition", "cache", "hot", "row", "composite",
    "unique", "lookup", "routing", "object", "idempotency", "i18n", "translation", "next", "page", "continuation",
    "cursor", "sync", "max", "min", "num", "total", "hash", "dict", "map", "redis", "s3", "file", "ssh", "gpg",
    "registry", "index", "group", "short", "hotkey", "keyboard", "tab", "react", "list", "order",
})
# After the secret word: still the secret ('API_KEY_PROD', 'token2', 'password_b64').
_QUALIFIERS = frozenset({
    "value", "b64", "base64", "hex", "raw", "plain", "plaintext", "string", "str", "bytes", "data", "enc",
    "encrypted", "prod", "production", "dev", "staging", "stage", "test", "live", "local", "new", "old",
    "current", "secondary", "primary", "v", "override", "default", "base",
})


def secret_name(name: str) -> int:
    """2: the name holds a secret whatever its value; 1: only if the value looks generated; 0: not a secret."""
    words = [w.lower() for w in _NAME_WORD_RE.findall(name)]
    while len(words) > 1 and (words[-1] in _QUALIFIERS or words[-1].isdigit()):
        words.pop()
    if not words:
        return 0
    last, before = words[-1], words[:-1]
    if last in _STRONG_WORDS:
        return 2
    if last.endswith(_STRONG_ENDINGS):
        if last.endswith("token") and before and before[-1] in _PUBLIC_PREFIXES:
            return 0
        return 2
    if last.endswith("key") and len(last) > 3:  # APIKEY, secretKey spelled as one word
        return 2 if last[:-3] in _KEY_PREFIXES else 0
    if last in _WEAK_WORDS:
        if before and before[-1] in _PUBLIC_PREFIXES:
            return 0
        if last == "key" and before and before[-1] in _KEY_PREFIXES:
            return 2
        return 1
    return 0


# -- values --------------------------------------------------------------------------------------

# Values that are not secrets but a reference to one, a type, or a template.
_NOT_A_VALUE_RE = re.compile(
    r"(?i)^(?:none|null|nil|true|false|undefined|required|optional|str|string|bytes|int|bool|any|secretstr"
    r"|include|same-origin|omit"  # fetch() credentials modes
    r"|hidden|redacted|masked|\*+|x{3,}|[x-]{8,}|\.\.\.+|.*\.\.\.|<[^>]*>?|\[[^\]]*\]|\$\{.*\}?|\$\(.*|\$\w+|\{\{.*|%\(?\w*\)?s"
    r"|\{\w*\}|#\{.*\}|@\w+\(.*|!vault.*|your[_-]?\w*|replace[_-]?me|insert[_-]?\w*|todo|tbd|fixme|placeholder"
    r"|process\.env\.\w+|env\(.*|os\.environ.*|getenv.*|secrets?\.\w+.*|settings\.\w+.*|config\.\w+.*)$"
)
# A path to a key file is not the key (the home-path detector sees the user in it); base64 may start with '/'.
_PATH_RE = re.compile(r"^(?:/|~/|\./|\.\./|[A-Za-z]:\\)[^:]*$")
_CODE_REFERENCE_RE = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+$|^[A-Za-z_]+$")
_UUID_OR_HEX_RE = re.compile(r"^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{16,})$")
_WORDS_RE = re.compile(r"^(?:[A-Za-z][a-z]*|[A-Z]+|\d{1,6})(?:[._:/-]+(?:[A-Za-z][a-z]*|[A-Z]+|\d{1,6}))*$")
_VERSION_LIKE_RE = re.compile(r"^v?\d+(?:\.\d+)+")
# Defaults typed as passwords: words, but passwords all the same when they follow 'password is'.
COMMON_PASSWORDS = frozenset({
    "changeme", "letmein", "password", "passw0rd", "admin", "administrator", "root", "toor", "qwerty", "welcome",
    "secret", "default", "guest", "master", "dragon", "monkey", "sunshine", "iloveyou", "trustno1", "abc123",
})


def is_reference(value: str) -> bool:
    """A placeholder, a variable, a template or a path: where the secret is, not the secret."""
    value = value.strip("\"'")
    if len(value) < 3 or _NOT_A_VALUE_RE.match(value):
        return True
    return bool(_PATH_RE.match(value)) and not looks_random(value.replace("/", ""))


def looks_generated(value: str) -> bool:
    """A value no person would name a thing: random, hex or UUID, or letters and digits mixed."""
    if len(value) < 8 or " " in value or "://" in value or value[0] in "/~.\\" or _VERSION_LIKE_RE.match(value):
        return False
    if "=" in value.rstrip("=") or "(" in value:
        return False  # a list of its own (t=1710028800,v1=...) or a call, not one value
    if _UUID_OR_HEX_RE.match(value) or looks_random(value):
        return True
    if _WORDS_RE.match(value):
        return False  # my-cache-prefix, orders:1234, en_US, Default
    has_digit = any(c.isdigit() for c in value)
    has_alpha = any(c.isalpha() for c in value)
    mixed = any(c.isupper() for c in value) and any(c.islower() for c in value)
    return (has_digit and has_alpha) or (mixed and not value[1:].islower())


def password_like(value: str) -> bool:
    """A single typed token read as a password in prose: not a plain word, or a well-known default."""
    if len(value) < 4 or is_reference(value):
        return False
    if value.lower() in COMMON_PASSWORDS:
        return True
    if "(" in value or ("." in value and _CODE_REFERENCE_RE.match(value) and not any(c.isdigit() for c in value)):
        return False  # password = getpass.getpass(...), pw: settings.DB_PASSWORD
    return not value.isalpha() or (value[1:] != value[1:].lower() and not value.isupper())


def _assigned_value_ok(strength: int, key: str, sep_is_colon: bool, value: str, rest_of_line: str) -> bool:
    if is_reference(value):
        return False
    if rest_of_line[:1] in ("(", "["):  # password = getpass(...), token = headers["x"]
        return False
    if strength == 1:
        if key.lower().endswith("pin") and value.isdigit():
            return 4 <= len(value) <= 8
        return looks_generated(value)
    if _CODE_REFERENCE_RE.match(value) and not any(c.isdigit() for c in value):
        # `password=pw` / `token = settings.TOKEN` in code is a variable; in env files
        # (UPPER_CASE key) a bare word is the value itself, and in YAML (`password: hunter`)
        # too when nothing but a comment follows ("Top secret: the launch..." is prose).
        if key.isupper() or value.lower() in COMMON_PASSWORDS:
            return True
        return sep_is_colon and "." not in value and rest_of_line.strip()[:1] in ("", "#", ",", "}")
    return True


# -- key = value -----------------------------------------------------------------------------------

_SECRET_WORDS = (
    r"pass(?:wor)?d|passwd|passphrase|passcode|pass|pwd|pw|secret|token|key|credentials?|creds|auth|sig|signature"
    r"|salt|hmac|pin|cookie|mdp|passwort|kennwort|wachtwoord|senha|contrase\u00f1a|contrasena|has\u0142o|haslo"
)
_QUALIFIER_RE = r"(?:[_.-]?(?:value|b64|base64|hex|raw|plain(?:text)?|string|str|bytes|data|base|enc(?:rypted)?|prod|dev|test|live|v?\d+))*"
# The end of a key (a secret word and qualifiers), optional closing quote, separator, value. Anchored
# on the word rather than the key's start: scanning is 5x faster, and the key is found by walking
# back over [\w.-] (see _key_start).
_ASSIGNMENT_RE = re.compile(
    r"((?:" + _SECRET_WORDS + r")" + _QUALIFIER_RE + r")"
    r"[\"']?[ \t]*(?:=|:=|:|=>|->)[ \t]*"
    r"(?:\"([^\"\n]*)\"|'([^'\n]*)'|`([^`\n]*)`|([^\s\"',;()\[\]{}<>`]+))",
    re.IGNORECASE,
)
_XML_RE = re.compile(r"<([A-Za-z_][\w.-]*)>([^<>\s]{3,})</\1>|\bkey=\"([^\"]+)\"\s+value=\"([^\"]+)\"")
# Searched in text.lower(): a case-insensitive alternation is ~8x slower in `re`.
_ASSIGNMENT_HINT_RE = re.compile(
    r"pass|secret|token|key|credential|creds|pin|pw|auth|sig|salt|hmac|cookie|mdp|kennwort|wachtwoord|senha"
    r"|contrase|has\u0142o|haslo"
)
_PASSWORD_KEY_RE = re.compile(r"(?i)(?:pass(?:wor)?d|passwd|passphrase|passcode)$")
_METADATA_KEY_RE = re.compile(r"(?i)(?:^pwd$|^oldpwd$|tokens$|tokenizer|_type$|_url$|_uri$|_file$|_path$|_name$|_len$)")


def _at_line_start(text: str, pos: int) -> bool:
    line_start = text.rfind("\n", 0, pos) + 1
    return text[line_start:pos].strip(" \t-") == ""


def _key_start(text: str, pos: int) -> int:
    stop = max(0, pos - 128)  # no real key is longer; bounds the walk on adversarial input
    while pos > stop and (text[pos - 1].isalnum() or text[pos - 1] in "_.-"):
        pos -= 1
    return pos


def find_assignments(text: str) -> Iterator[tuple[int, int]]:
    if not _ASSIGNMENT_HINT_RE.search(text.lower()):
        return
    if "=" in text or ":" in text or "->" in text:
        yield from _find_key_values(text)
    if "</" in text or "value=" in text:
        yield from _find_xml(text)


def _find_key_values(text: str) -> Iterator[tuple[int, int]]:
    for m in _ASSIGNMENT_RE.finditer(text):
        if m.end(1) < len(text) and (text[m.end(1)].isalnum() or text[m.end(1)] == "_"):
            continue
        key_start = _key_start(text, m.start(1))
        key = text[key_start:m.end(1)]
        strength = secret_name(key)
        if not strength or _METADATA_KEY_RE.search(key):
            continue
        g = next(i for i in (2, 3, 4, 5) if m.group(i) is not None)
        value = m.group(g)
        sep_is_colon = ":" in text[m.end(1):m.start(g)] and "=" not in text[m.end(1):m.start(g)]
        eol = text.find("\n", m.end())
        rest_of_line = text[m.end():eol if eol >= 0 else len(text)]
        if g in (2, 3, 4):
            ok = not is_reference(value) and (strength == 2 or looks_generated(value))
        elif sep_is_colon and _PASSWORD_KEY_RE.search(key) and _at_line_start(text, key_start):
            # YAML/INI `passphrase: correct horse battery staple`: the value is the rest of the line.
            value = (value + rest_of_line).split(" #", 1)[0].rstrip()
            ok = _assigned_value_ok(strength, key, True, value.split(" ", 1)[0], "")
        else:
            ok = _assigned_value_ok(strength, key, sep_is_colon, value, rest_of_line)
        if ok:
            yield m.start(g), m.start(g) + len(value)


def _find_xml(text: str) -> Iterator[tuple[int, int]]:
    for m in _XML_RE.finditer(text):
        name, g = (m.group(1), 2) if m.group(1) else (m.group(3), 4)
        strength = secret_name(name)
        value = m.group(g)
        if strength and _assigned_value_ok(strength, name, False, value, ""):
            yield m.span(g)


# -- URL query parameters -------------------------------------------------------------------------

_URL_PARAM_RE = re.compile(r"[?&;]([A-Za-z][\w.-]{0,40})=([^&#\s\"'<>`)\]]+)")
_URL_STRONG = frozenset({"code", "sig", "signature", "jwt", "session", "sessionid", "sid", "x-amz-credential"})


def find_url_params(text: str) -> Iterator[tuple[int, int]]:
    if "=" not in text or ("?" not in text and "&" not in text):
        return
    for m in _URL_PARAM_RE.finditer(text):
        name, raw = m.group(1), m.group(2)
        strength = secret_name(name) or (1 if name.lower() in _URL_STRONG else 0)
        if not strength:
            continue
        value = unquote(raw)
        if is_reference(value):
            continue
        if strength == 2 and (secret_name(name) == 2 and _PASSWORD_KEY_RE.search(name.replace("pass", "password"))):
            ok = len(value) >= 3
        else:
            ok = looks_generated(value) or (strength == 2 and len(value) >= 12 and not value.isalpha())
        if ok:
            yield m.span(2)


# -- command lines --------------------------------------------------------------------------------

_V = r"""(?:'(?P<q1>[^'\n]+)'|"(?P<q2>[^"\n]+)"|(?P<v>[^\s'"<$(-][^\s'"]*))"""
_V_NO_SLASH = r"""(?:'(?P<q1>[^'\n]+)'|"(?P<q2>[^"\n]+)"|(?P<v>[^\s'"<$(*/-][^\s'"]*))"""
_PIPE_READERS = (
    r"(?:sudo\b[^|\n]*\s-\w*S\b|passwd\b[^|\n]*--stdin|chpasswd|docker\s+login\b[^|\n]*--password-stdin"
    r"|podman\s+login|helm\s+registry\s+login|kinit|cryptsetup|gpg\b|vault\s+login|htpasswd\s+-\w*i|su\b|openssl)"
)
_I = re.IGNORECASE
# (pattern, flags, needles): a pattern runs only on a line whose lower-case text holds one of its needles.
_CLI_PATTERNS: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    (r"(?<!\S)(?:mysql|mysqldump|mariadb|mysqladmin|mysqlimport|mysqlcheck)\b[^\n|;]*?\s-p(?P<v>[^\s-]\S*)", _I,
     ("mysql", "mariadb")),
    (r"(?<!\S)sshpass\s+-p\s*" + _V, 0, ("sshpass",)),
    (r"(?<!\S)redis-cli\b[^\n|;]*?\s-a\s+" + _V, 0, ("redis-cli",)),
    (r"(?<!\S)(?:docker|podman|nerdctl|helm|oras|skopeo)\s+(?:registry\s+)?login\b[^\n|;]*?\s(?:-p|--password)[ =]" + _V,
     0, ("login",)),
    (r"(?<!\S)(?:zip|unzip)\b[^\n|;]*?\s-P\s*" + _V, 0, ("zip",)),
    (r"(?<!\S)7z[a]?\b[^\n|;]*?\s-p(?P<v>\S+)", 0, ("7z",)),
    (r"(?<!\S)(?:-u|--user)\s+(?:'(?P<q1>[^'\n]+:[^'\n]+)'|\"(?P<q2>[^\"\n]+:[^\"\n]+)\"|(?P<v>[^\s:'\"]+:\S+))", 0,
     ("-u", "--user")),
    (r"(?<!\S)-pass(?:in|out)?\s+pass:(?P<v>\S+)", 0, ("pass:",)),  # openssl
    (r"(?<!\S)--?(?:[A-Za-z0-9]+-)*(?:password|passwd|pass|passphrase|token|api-?key|secret|secret-key|auth-token"
     r"|access-token|client-secret|storepass|keypass|srcstorepass|deststorepass|srckeypass|destkeypass)[ =]" + _V, _I,
     ("pass", "token", "key", "secret")),
    (r"(?<!\S)net\s+user\s+(?:\"[^\"]+\"|[^\s/\"]+)\s+" + _V_NO_SLASH, _I, ("net ",)),
    (r"(?<!\S)net\s+use\s+(?:[A-Za-z]:\s+|\*\s+)?\\\\\S+\s+" + _V_NO_SLASH, _I, ("net ",)),
    (r"(?<!\S)net\s+use\b[^\n|;]*?/user:\S+\s+" + _V_NO_SLASH, _I, ("net ",)),
    (r"(?<!\S)(?:sqlcmd|bcp|osql|isql)\b[^\n|;]*?\s-P\s*" + _V, 0, ("sqlcmd", "bcp", "osql", "isql")),
    (r"(?<!\S)ldap\w+\b[^\n|;]*?\s-w\s*" + _V, 0, ("ldap",)),
    (r"(?<!\S)(?:-U|--user(?:name)?)[ =]['\"]?[^\s%'\"]+%(?P<v>[^\s'\"]+)", 0, ("%",)),  # smbclient: user%pass
    (r"(?<!\S)/p(?:assword)?:" + _V, 0, ("/p",)),  # xfreerdp /p:
    (r"(?<!\S)(?:rdesktop|psexec|paexec|psexec64|az\s+login|mongo|mongosh|mongodump|mongorestore|mongoexport"
     r"|mongoimport|crackmapexec|cme|nxc|netexec|evil-winrm|smbmap|hydra|medusa|kerbrute|useradd|usermod)"
     r"(?:\.exe)?\b[^\n|;]*?\s-p\s+" + _V, _I,
     ("rdesktop", "exec", "az ", "mongo", "cme", "nxc", "winrm", "smbmap", "hydra", "medusa", "kerbrute", "user")),
    (r"(?<!\S)(?:echo(?:\s+-[neE]+)?|printf(?:\s+(?:'%s\\n'|\"%s\\n\"|'%s'|\"%s\"))?)\s+" + _V + r"\s*\|\s*" + _PIPE_READERS,
     0, ("|",)),
    (r"(?<!\S)htpasswd\s+(?=(?:-[A-Za-z]+\s+)*-[A-Za-z]*b)(?:-[A-Za-z]+\s+)+(?!-)\S+\s+\S+\s+" + _V, 0, ("htpasswd",)),
    (r"(?<!\S)lftp\b[^\n|;]*?\s-u\s+['\"]?[^\s,'\"]+,(?P<v>[^\s'\"]+)", 0, ("lftp",)),
    (r"(?<!\S)ipmitool\b[^\n|;]*?\s-P\s+" + _V, 0, ("ipmitool",)),
    (r"(?<!\S)winrs\b[^\n|;]*?\s[-/]p(?:assword)?:" + _V, _I, ("winrs",)),
    (r"<\(\s*(?:echo|printf)\s+" + _V + r"\s*\)", 0, ("<(",)),  # -passwd <(echo PASS)
    (r"(?<!\S)(?:sqlplus|rman|expdp|impdp)\s+(?:-\w\s+)*['\"]?[\w.$#]+/(?P<v>[^\s@'\"/]+)", _I,
     ("sqlplus", "rman", "expdp", "impdp")),
    (r"ConvertTo-SecureString\s+(?:-String\s+)?" + _V, _I, ("securestring",)),
    (r"(?<!\S)mc\s+(?:alias|config\s+host)\s+(?:set|add)\s+\S+\s+\S+\s+\S+\s+" + _V, 0, ("mc ",)),  # MinIO
    (r"(?<!\S)aws\s+configure\s+set\s+\S*(?:secret|token|key)\S*\s+" + _V, _I, ("configure",)),
    (r"\bconfig\s+set\s+\S*(?:_auth(?:Token)?|password|token)\S*[ =]" + _V, _I, ("config",)),  # npm/yarn
    (r"(?<![\w/])[\w.-]+/[\w.$-]+:(?P<v>[^\s@:/]+)@[\w.-]+", 0, ("@",)),  # impacket: domain/user:pass@host
)
_CLI_RES = tuple((re.compile(p, flags), needles) for p, flags, needles in _CLI_PATTERNS)
_USER_PASS_RE = _CLI_RES[6][0]  # -u user:pass redacts the pair; whether it is a reference is the password's


def name_is_pair(pattern: re.Pattern[str]) -> bool:
    return pattern is _USER_PASS_RE
# Every needle in one search: most typed lines hold none and cost this one pass.
_CLI_HINT_RE = re.compile("|".join(sorted({re.escape(n) for _, _, ns in _CLI_PATTERNS for n in ns})))


def find_cli_secrets(text: str) -> Iterator[tuple[int, int]]:
    if " " not in text:
        return
    low = text.lower()
    if not _CLI_HINT_RE.search(low):
        return
    for pattern, needles in _CLI_RES:
        if not any(n in low for n in needles):
            continue
        for m in pattern.finditer(text):
            groups = m.groupdict()
            for name in ("q1", "q2", "v"):
                value = groups.get(name)
                if value:
                    # curl -u user:<password>: the user is kept with the pair, the reference decides
                    if not is_reference(value.rsplit(":", 1)[-1] if name_is_pair(pattern) else value):
                        yield m.span(name)
                    break


# -- prose ------------------------------------------------------------------------------------------

_PW_WORDS = (r"password|passwd|passcode|passphrase|pass|pwd|pw|pin|passwort|kennwort|mot de passe|mdp"
             r"|contrase\u00f1a|senha|wachtwoord")
# 'the wifi password is Tr0ub4dor&3', 'pass for nas: x', 'PW for db01 = x': only a word that does not read
# like a word counts.
_PROSE_PASSWORD_RE = re.compile(
    r"(?i)\b(?:" + _PW_WORDS + r")\b(?P<of>\s+(?:for|of|on|to)\s+[^\n:=]{1,40}?)?"
    r"(?:\s+(?:is|was|est|ist|es|are|ist)\s+|(?P<sep>\s*[:=]\s*))[\"']?(?P<value>[^\s\"']+)"
)
_PROSE_BARE_RE = re.compile(r"(?i)\b(?:password|passwd|pw|pwd)\s+(?!(?:is|was|for|of|to|on|and|or|the|a)\b)([^\s\"']+)")
_PROSE_PAIR_RE = re.compile(r"(?i)\b(?:creds?|credentials|login|use|try|user(?:name)?)\s*:?\s+[\w.@\\-]+\s*/\s*([^\s\"']+)")
_BEARER_RE = re.compile(r"(?i)\b(?:bearer|basic|token)\s+([A-Za-z0-9._~+/-]{16,}=*)")


_PROSE_HINT_RE = re.compile(r"p(?:ass|w|in|wd)|mdp|kennwort|contrase|senha|bearer|basic|token| / ")


def find_prose_secrets(text: str) -> Iterator[tuple[int, int]]:
    if " " not in text or not _PROSE_HINT_RE.search(text.lower()):
        return
    for pattern in (_PROSE_PASSWORD_RE, _PROSE_BARE_RE, _PROSE_PAIR_RE):
        for m in pattern.finditer(text):
            group = "value" if pattern is _PROSE_PASSWORD_RE else 1
            if group == "value" and m.group("of") and m.group("sep") == ":" and ":" in m.group("value"):
                continue  # "Failed password for root from fe80:1:2::": colons inside an address, not "pass for x: y"
            value = m.group(group).rstrip(".,;:)")  # sentence punctuation; '!' and '?' are common in passwords
            word = m.group(0)[:4].lower()
            if (word.startswith("pin") and value.isdigit() and 4 <= len(value) <= 8) or password_like(value):
                start = m.start(group)
                yield start, start + len(value)
    for m in _BEARER_RE.finditer(text):
        value = m.group(1)
        if any(c.isdigit() for c in value) and not value.isalpha():
            yield m.span(1)

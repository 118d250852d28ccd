"""The Redactor: runs every detector over a piece of typed text and replaces what they find.

Order of decisions for one text:

1. Typed into a password prompt (window title or application class says so)?
   The whole text is ``<PASSWORD>``; nothing else is looked at.
2. Typed into a terminal right after a command that prompts (``sudo``,
   ``ssh``, ``passwd``, ``docker login``...)? Terminals do not change their
   title for the prompt, so the next single-word lines are the answers:
   ``<PASSWORD>`` (``<USER>`` where the command asks for a user name first).
   This errs on the side of redaction: ``sudo`` with cached credentials makes
   us drop the next one-word command too.
3. Every detector proposes spans; where spans overlap the lowest ``rank`` (most
   specific detector) names the placeholder and the union is redacted, so a
   less specific detector can widen a redaction but never leave part of a
   secret behind.

A detector that raises is a bug in our code, not in the input: the text is
replaced by ``<REDACTED>`` as a whole (fail closed) and counted, and the build
goes on. Only the detector name and exception type are logged, never the
message, which could quote the text.
"""

from __future__ import annotations

import bisect
import functools
import logging
import re
import types
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from ._detectors import PII_DETECTORS, Detector, phone_detector
from ._secrets import SECRET_DETECTORS

__all__ = [
    "DEFAULT_PASSWORD_APP_PATTERNS",
    "DEFAULT_PASSWORD_TITLE_PATTERNS",
    "DETECTORS",
    "PLACEHOLDERS",
    "Redactor",
    "Span",
]

log = logging.getLogger("deskcorder.privacy")

_KINDS = (
    "EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "NATIONAL_ID", "SECRET", "PASSWORD",
    "MAC", "USER", "HOST", "IDENTIFIER", "REDACTED",
    "IP", "ID_DOCUMENT", "BANK_ACCOUNT", "NAME", "HEALTH",
)
PLACEHOLDERS: types.MappingProxyType[str, str] = types.MappingProxyType({k: f"<{k}>" for k in _KINDS})
_PLACEHOLDER_RE = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS.values()))

# Window titles of prompts that collect a secret. Titles that merely name a file
# (login.py, auth_service.go) are stripped of file names before matching.
DEFAULT_PASSWORD_TITLE_PATTERNS: tuple[str, ...] = (
    r"(?i)pass(?:word|phrase|code|wort)|mot de passe|contrase\u00f1a|kennwort",
    r"(?i)\[sudo\]|\bsudo\b|\bpolkit\b|\bpkexec\b|authenticat|authentific|anmeldung|authori[sz]ation required",
    r"(?i)\bssh\b.*@|ssh-askpass|pinentry|keyring|keychain|kwallet",
    r"(?i)\blog ?in\b|\bsign[ -]?in\b|\blogon\b|\bunlock\b|\bpin\b|\b2fa\b|one-time code|verification code",
    r"(?i)\bconnexion\b|\banmelden\b|iniciar sesi\u00f3n|\baccedi\b|\binloggen\b|\blogowanie\b",
    # sign-up forms ask for a new password; name and email typed there are personal anyway
    r"(?i)\bsign ?up\b|create (?:an |your )?account|\bregist(?:er|ration|rieren)\b|\binscription\b",
)
# WM classes of programs whose every keystroke is a secret or a vault search.
DEFAULT_PASSWORD_APP_PATTERNS: tuple[str, ...] = (
    (
        r"(?i)pinentry|ssh-askpass|gcr-prompter|polkit|gnome-keyring|kwalletd|keepass|1password|bitwarden"
        r"|lastpass|seahorse|lxqt-sudo|gksu|kdesu|ksshaskpass"
    ),
)
_FILE_NAME_RE = re.compile(
    r"[\w.-]+\.(?:py|js|ts|tsx|jsx|go|rs|java|kt|rb|php|c|h|cc|cpp|hpp|cs|sh|md|rst|txt|json|ya?ml|toml|html?"
    r"|css|sql|docx?|xlsx?|odt|ods|pdf|ini|cfg|conf|log)\b",
    re.IGNORECASE,
)
_ASKS_FOR_A_PASSWORD = (
    r"^\s*(?:sudo|su|doas|pkexec|ssh|scp|sftp|kinit|ssh-add|docker\s+login|podman\s+login|vault\s+login"
    r"|mysql\b.*\s-p|psql\b)(?:\s|$)"
)
# Commands that make the terminal prompt on the next line(s), and what each answer is.
_PROMPTING_COMMANDS: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = tuple(
    (re.compile(pattern), answers)
    for pattern, answers in (
        (r"^\s*(?:sudo\s+)?passwd(?:\s|$)", ("PASSWORD",) * 3),  # current, new, repeat
        (r"^\s*(?:docker|podman|helm\s+registry)\s+login\b(?!.*\s(?:-u|--username)\b)", ("USER", "PASSWORD")),
        (r"^\s*(?:ftp|telnet)(?:\s|$)", ("USER", "PASSWORD")),
        (_ASKS_FOR_A_PASSWORD, ("PASSWORD",)),
    )
)
# Answers to prompts and cheap commands; treating them as passwords would only erase noise.
_NOT_A_PASSWORD_LINE = frozenset(
    {"", "y", "n", "yes", "no", "ls", "ll", "cd", "pwd", "exit", "logout", "clear", "q", "top", "htop", "whoami"}
)
_SSH_CONTEXT_RE = re.compile(r"\b(?:ssh|scp|sftp|rsync|mosh|ssh-copy-id|telnet)\b")
_USER_AT_HOST_RE = re.compile(
    r"(?<![\w.+%-])([a-z_][a-z0-9_.-]{0,31})@([A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?![\w-])"
)
_VERSION_RE = re.compile(r"^\d+(?:\.\d+){0,2}$")
_HOME_RE = re.compile(r"(?:/home/|/Users/|/var/home/|[A-Za-z]:\\Users\\|[A-Za-z]:/Users/)([^/\\\s:;,'\"]+)")
_SHARED_HOMES = frozenset({"public", "default", "all users", "shared", "<user>"})  # <user>: already redacted
_PROMPT_CACHE_SIZE = 4096


class Span(NamedTuple):
    start: int
    end: int
    kind: str
    detector: str
    rank: int = 100


def _find_home_users(text: str) -> Iterable[tuple[int, int]]:
    if "/home/" in text or "Users" in text or "/var/home/" in text:
        for m in _HOME_RE.finditer(text):
            if m.group(1).lower() not in _SHARED_HOMES:
                yield m.span(1)


# Everything a Redactor runs besides prompt detection, known identifiers and user@host.
DETECTORS: tuple[Detector, ...] = (
    SECRET_DETECTORS + PII_DETECTORS + (Detector("home_path", "USER", 75, _find_home_users),)
)


@functools.lru_cache(maxsize=64)
def _known_re(known: tuple[str, ...]) -> re.Pattern[str] | None:
    words = sorted({k.strip() for k in known if k and k.strip()}, key=len, reverse=True)
    if not words:
        return None
    alternation = "|".join(re.escape(w) for w in words)
    return re.compile(rf"(?<![A-Za-z0-9])(?:{alternation})(?![A-Za-z0-9])", re.IGNORECASE)


class Redactor:
    """Replaces secrets and personal data in typed text and window titles by typed placeholders.

    ``redact(text)`` returns the new text and ``{kind: count}`` for the kinds
    it replaced (kinds are the keys of `PLACEHOLDERS`). Safe to share between
    threads: it holds compiled patterns and a cache of window-title verdicts.
    """

    def __init__(
        self,
        password_title_patterns: Sequence[str] = DEFAULT_PASSWORD_TITLE_PATTERNS,
        *,
        password_app_patterns: Sequence[str] = DEFAULT_PASSWORD_APP_PATTERNS,
        detectors: Sequence[Detector] = DETECTORS,
        phone_regions: Sequence[str] | None = None,
    ) -> None:
        """``phone_regions``: ISO 3166 codes tried, in order, for phone numbers typed without a country
        code (default `DEFAULT_PHONE_REGIONS`); put the fleet's own countries first."""
        self._title_res = tuple(re.compile(p) for p in password_title_patterns)
        self._app_res = tuple(re.compile(p) for p in password_app_patterns)
        if phone_regions is not None:
            phone = phone_detector(phone_regions)
            detectors = [phone if d.name == phone.name else d for d in detectors]
        self._detectors = tuple(detectors)
        self._prompt_cache: dict[tuple[str | None, str | None], bool] = {}

    # -- public API --------------------------------------------------------------------------

    def redact(
        self,
        text: str,
        *,
        app_class: str | None = None,
        window_title: str | None = None,
        known_identifiers: Iterable[str] = (),
    ) -> tuple[str, dict[str, int]]:
        """Return ``text`` with every detected span replaced by its placeholder, and counts per kind."""
        spans = self.find_spans(
            text, app_class=app_class, window_title=window_title, known_identifiers=known_identifiers
        )
        return _apply(text, spans)

    def redact_title(self, title: str, *, known_identifiers: Iterable[str] = ()) -> tuple[str, dict[str, int]]:
        """Scrub a window title: ``alice@ws-042: ~/src`` -> ``<USER>@<HOST>: ~/src``.

        On top of the detectors used for typed text (emails, phones, secrets...),
        any ``user@host``, MAC address, home-directory user name and each of
        ``known_identifiers`` (the device's hostname, the employee's login...,
        matched case-insensitively as whole words) is replaced.
        """
        return _apply(title, self.find_title_spans(title, known_identifiers=known_identifiers))

    def is_password_prompt(self, *, app_class: str | None = None, window_title: str | None = None) -> bool:
        """Whether text typed into this window is a secret as a whole (see DEFAULT_PASSWORD_*_PATTERNS)."""
        if not app_class and not window_title:
            return False
        key = (app_class, window_title)
        verdict = self._prompt_cache.get(key)
        if verdict is None:
            # Titles repeat for every run typed in a window: match each one once.
            if len(self._prompt_cache) >= _PROMPT_CACHE_SIZE:
                self._prompt_cache.clear()
            verdict = self._prompt_cache[key] = self._match_prompt(app_class, window_title)
        return verdict

    def _match_prompt(self, app_class: str | None, window_title: str | None) -> bool:
        if app_class and any(r.search(app_class) for r in self._app_res):
            return True
        if window_title:
            title = _FILE_NAME_RE.sub(" ", window_title)
            return any(r.search(title) for r in self._title_res)
        return False

    def find_spans(
        self,
        text: str,
        *,
        app_class: str | None = None,
        window_title: str | None = None,
        known_identifiers: Iterable[str] = (),
    ) -> list[Span]:
        """The spans `redact` would replace, sorted by position (for tests and statistics)."""
        if not text:
            return []
        if self.is_password_prompt(app_class=app_class, window_title=window_title):
            return [Span(0, len(text), "PASSWORD", "password_prompt", 0)]
        return self._detect(text, known_identifiers, user_at_host=False)

    def find_title_spans(self, title: str, *, known_identifiers: Iterable[str] = ()) -> list[Span]:
        """The spans `redact_title` would replace, sorted by position."""
        return self._detect(title, known_identifiers, user_at_host=True) if title else []

    # -- internals ---------------------------------------------------------------------------

    def _detect(self, text: str, known_identifiers: Iterable[str], *, user_at_host: bool) -> list[Span]:
        candidates: list[Span] = []
        name = "?"
        try:
            for det in self._detectors:
                name = det.name
                for a, b in det.find(text):
                    if b > a:
                        candidates.append(Span(a, b, det.kind, name, det.rank))
            name = "prompt_answers"
            if "\n" in text:
                candidates.extend(_password_lines(text))
            name = "user_at_host"
            if "@" in text:
                candidates.extend(_user_at_host(text, everywhere=user_at_host))
            name = "known_identifier"
            if known_identifiers:
                known = _known_re(tuple(known_identifiers))
                if known is not None:
                    candidates.extend(Span(*m.span(), "IDENTIFIER", name, 76) for m in known.finditer(text))
        except Exception as exc:  # noqa: BLE001 - a detector bug must not crash a dataset build
            log.warning("redaction detector %r failed (%s); whole text redacted", name, type(exc).__name__)
            return [Span(0, len(text), "REDACTED", name, -1)]
        if candidates and "<" in text:
            candidates = _outside_placeholders(text, candidates)
        return _resolve(candidates) if len(candidates) > 1 else candidates


def _outside_placeholders(text: str, candidates: list[Span]) -> list[Span]:
    """Drop spans that only re-find an earlier placeholder: redacting twice changes nothing."""
    placeholders = [m.span() for m in _PLACEHOLDER_RE.finditer(text)]
    if not placeholders:
        return candidates
    return [s for s in candidates if not any(a <= s.start and s.end <= b for a, b in placeholders)]


def _password_lines(text: str) -> Iterable[Span]:
    if "\n" not in text:
        return
    pos = 0
    pending: tuple[str, ...] = ()  # what the next lines answer, if they look like answers
    for line in text.split("\n"):
        stripped = line.strip()
        if pending and stripped and " " not in stripped and stripped.lower() not in _NOT_A_PASSWORD_LINE:
            start = pos + line.index(stripped)
            yield Span(start, start + len(stripped), pending[0], "answer_to_prompting_command", 0)
            pending = pending[1:]
        else:
            pending = next((answers for pattern, answers in _PROMPTING_COMMANDS if pattern.match(line)), ())
        pos += len(line) + 1


def _user_at_host(text: str, *, everywhere: bool) -> Iterable[Span]:
    if "@" not in text or not (everywhere or _SSH_CONTEXT_RE.search(text)):
        return
    for m in _USER_AT_HOST_RE.finditer(text):
        host = m.group(2)
        if _VERSION_RE.match(host):
            continue  # lodash@4.17.21 is a package pin
        yield Span(*m.span(1), "USER", "user_at_host", 77)
        yield Span(*m.span(2), "HOST", "user_at_host", 77)


def _resolve(candidates: list[Span]) -> list[Span]:
    """Non-overlapping spans: most specific first; a less specific overlap widens, never splits."""
    candidates.sort(key=lambda s: (s.rank, s.start, -s.end))
    # Accepted spans never overlap, so sorted by start they are sorted by end too and
    # the ones a candidate overlaps are a contiguous slice: two bisects, not a scan
    # (a pasted list of 10,000 addresses must not take quadratic time).
    accepted: list[Span] = []
    starts: list[int] = []
    ends: list[int] = []
    for s in candidates:
        j = bisect.bisect_right(ends, s.start)
        k = bisect.bisect_left(starts, s.end)
        if j >= k:
            accepted.insert(j, s)
            starts.insert(j, s.start)
            ends.insert(j, s.end)
            continue
        lo, hi = min(s.start, starts[j]), max(s.end, ends[k - 1])
        if lo == starts[j] and hi == ends[k - 1]:
            continue  # inside what is already redacted
        best = min(accepted[j:k], key=lambda a: a.rank)
        accepted[j:k] = [Span(lo, hi, best.kind, best.detector, best.rank)]
        starts[j:k] = [lo]
        ends[j:k] = [hi]
    return accepted


def _apply(text: str, spans: list[Span]) -> tuple[str, dict[str, int]]:
    if not spans:
        return text, {}
    out: list[str] = []
    counts: dict[str, int] = {}
    pos = 0
    for s in spans:
        out.append(text[pos:s.start])
        out.append(PLACEHOLDERS[s.kind])
        counts[s.kind] = counts.get(s.kind, 0) + 1
        pos = s.end
    out.append(text[pos:])
    return "".join(out), counts

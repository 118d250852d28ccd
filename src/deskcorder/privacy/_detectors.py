"""Personal-data detectors: cards, IBANs, national ids, emails, phones, MAC addresses.

Each detector is a regular expression that proposes candidates plus a
validation step that rejects look-alikes: a 16-digit order number is not a card
unless it passes Luhn *and* starts with an issuer prefix; an IBAN must have its
country's exact length and pass ISO 7064 mod-97; national ids are accepted only
where their own check digits (or, for US SSNs, the SSA allocation rules) hold.
The cost of a check digit is a few microseconds; the precision it buys is what
lets us redact digits at all without erasing every price, date and ticket number.

A detector is a `Detector(name, kind, rank, find)`: `find(text)` yields
`(start, end)` spans; `rank` orders overlapping spans (lower = more specific
wins, see `_redact`). Detectors start with a cheap substring test so the common
case (a short run of prose) costs one `in` per detector.

Hand-written rather than a library: `phonenumbers` (or `detect-secrets` for
keys) would add megabytes of metadata for formats that a handful of
expressions cover at the accuracy the labelled corpus in
tests/data/redaction_corpus.jsonl measures.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import NamedTuple

from ._health import find_health_terms
from ._ids import find_bank_accounts, find_id_documents, find_national_ids
from ._names import find_names
from ._phones import DEFAULT_PHONE_REGIONS, PhoneFinder

__all__ = ["PII_DETECTORS", "Detector", "phone_detector", "dni_ok", "iban_ok", "luhn_ok", "nino_ok", "nir_ok", "ssn_ok"]

_DIGIT_RE = re.compile(r"\d")
Finder = Callable[[str], Iterable[tuple[int, int]]]


class Detector(NamedTuple):
    name: str
    kind: str  # placeholder kind: EMAIL, PHONE, CREDIT_CARD, IBAN, NATIONAL_ID, SECRET, PASSWORD, MAC, USER, ...
    rank: int  # lower wins when spans overlap: the more specific detector names the placeholder
    find: Finder


# -- checksums -----------------------------------------------------------------------------------


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# Exact IBAN length per country (SWIFT IBAN registry). Length is half of the
# validation: a wrong-length string with a lucky mod-97 is still rejected.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25,
    "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18,
    "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33,
    "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}


def iban_ok(iban: str) -> bool:
    """ISO 13616: known country, exact length, mod-97 of the rearranged number equals 1."""
    iban = iban.replace(" ", "").upper()
    if IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban.isalnum():
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def ssn_ok(area: str, group: str, serial: str) -> bool:
    # SSA never issues area 000, 666 or 900-999, group 00 or serial 0000.
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


# HMRC: first letter never D F I Q U V, second never D F I O Q U V; these pairs are never issued.
_NINO_BAD_PREFIXES = frozenset({"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"})


def nino_ok(prefix: str) -> bool:
    return prefix not in _NINO_BAD_PREFIXES


def nir_ok(nir: str) -> bool:
    """French NIR (numéro de sécurité sociale): key = 97 - (13 digits mod 97), Corsica 2A/2B -> 19/18."""
    nir = nir.replace(" ", "").upper()
    if len(nir) != 15:
        return False
    body, key = nir[:13], nir[13:]
    corsica = {"2A": "19", "2B": "18"}.get(body[5:7])  # department digits 6-7
    if corsica:
        body = body[:5] + corsica + body[7:]
    if not body.isdigit() or not key.isdigit():
        return False
    return 97 - int(body) % 97 == int(key)


_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def dni_ok(number: str, letter: str) -> bool:
    """Spanish DNI / NIE: control letter = table[number mod 23]; NIE X/Y/Z count as 0/1/2."""
    number = number.replace("X", "0").replace("Y", "1").replace("Z", "2")
    return number.isdigit() and _DNI_LETTERS[int(number) % 23] == letter


# -- credit cards --------------------------------------------------------------------------------

# 13-19 digits, optionally grouped by one kind of separator. The lookbehind keeps
# us from starting inside a longer number, a decimal or a date.
_CARD_RE = re.compile(r"(?<![\d.,/-])\d(?:[ -]?\d){11,22}(?![\d])")
_GROUP_RE = re.compile(r"\d+")


def _iin_ok(d: str) -> bool:
    """Issuer prefix + length (ISO/IEC 7812 ranges of the networks people actually use)."""
    n, p2, p3, p4, p6 = len(d), int(d[:2]), int(d[:3]), int(d[:4]), int(d[:6])
    if d[0] == "4":
        return n in (13, 16, 19)  # Visa
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return n == 16  # Mastercard
    if p2 in (34, 37):
        return n == 15  # American Express
    if p4 == 6011 or p2 == 65 or 644 <= p3 <= 649 or 622126 <= p6 <= 622925:
        return 16 <= n <= 19  # Discover
    if 3500 <= p4 <= 3599 or (p4 in (2131, 1800) and n == 15):
        return 15 <= n <= 19  # JCB (and its old 15-digit 2131/1800 ranges)
    if 300 <= p3 <= 305 or p2 in (36, 38, 39) or p4 == 3095:
        return 14 <= n <= 19  # Diners Club
    if p2 == 62 or 2200 <= p4 <= 2204:
        return 16 <= n <= 19  # UnionPay, Mir
    if p2 in (50, 56, 57, 58, 63, 67) or p4 in (6304, 6759, 6761, 6763):
        return 12 <= n <= 19  # Maestro (the only network with 12-digit numbers)
    return False


# A digit run glued to hex letters is part of a hash (a git SHA, a digest), not a card someone typed.
_HEX = frozenset("0123456789abcdefABCDEF")


def _inside_hex_word(text: str, start: int, end: int) -> bool:
    a, b = start, end
    while a > 0 and text[a - 1] in _HEX:
        a -= 1
    while b < len(text) and text[b] in _HEX:
        b += 1
    glued = a < start or b > end
    whole_word = (a == 0 or not text[a - 1].isalnum()) and (b == len(text) or not text[b].isalnum())
    return glued and whole_word and b - a >= 20


def _find_cards(text: str) -> Iterator[tuple[int, int]]:
    for m in _CARD_RE.finditer(text):
        if _inside_hex_word(text, m.start(), m.end()):
            continue
        s = m.group()
        seps = {c for c in s if not c.isdigit()}
        if len(seps) > 1:
            continue
        groups = [(g.start(), g.end()) for g in _GROUP_RE.finditer(s)]
        # Try the longest prefix of groups first: "4111 1111 1111 1111 12/27" must
        # still find the card when the expiry month was swallowed by the run.
        for k in range(len(groups), 0, -1):
            end = groups[k - 1][1]
            digits = s[:end].replace(" ", "").replace("-", "")
            if 12 <= len(digits) <= 19 and luhn_ok(digits) and _iin_ok(digits):
                if k > 1 and not _grouping_ok([b - a for a, b in groups[:k]]):
                    continue
                yield m.start(), m.start() + end
                break


def _grouping_ok(lengths: list[int]) -> bool:
    # 4-4-4-4(-3), Amex 4-6-5, Diners 4-6-4: anything else is more likely a list of numbers.
    if lengths in ([4, 6, 5], [4, 6, 4]):
        return True
    return all(n == 4 for n in lengths[:-1]) and 1 <= lengths[-1] <= 4


# -- IBAN ----------------------------------------------------------------------------------------

_IBAN_RE = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{2}\d{2})((?: ?[A-Za-z0-9]){10,32})")


def _find_ibans(text: str) -> Iterator[tuple[int, int]]:
    for m in _IBAN_RE.finditer(text):
        want = IBAN_LENGTHS.get(m.group(1)[:2].upper())
        if want is None:
            continue
        # The pattern greedily swallows following words ("... 0130 00 BIC"); cut at the
        # country's length and require the next character to be separated by a space.
        positions = [i for i in range(m.start(), m.end()) if text[i] != " "]
        if len(positions) < want:
            continue
        end = positions[want - 1] + 1
        if len(positions) > want and positions[want] == end:
            continue  # glued to more alphanumerics: part of a longer token
        candidate = text[m.start():end]
        if iban_ok(candidate):
            yield m.start(), end


# -- national identifiers ------------------------------------------------------------------------

_SSN_RE = re.compile(r"(?<![\w-])(\d{3})-(\d{2})-(\d{4})(?![\w-])")
# Without dashes nine digits are anything (zip+4, order numbers): only with the word SSN nearby.
_SSN_CONTEXT_RE = re.compile(
    r"(?i)\b(?:ssn|social security(?: number| no\.?| #)?)\b\W{0,6}(\d{3})[ .]?(\d{2})[ .]?(\d{4})(?!\d)"
)
# Case-insensitive: people type "ab123456c" into forms and chat as often as the printed capitals.
_NINO_RE = re.compile(
    r"(?i)(?<![A-Za-z0-9])([A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]) ?(\d{2}) ?(\d{2}) ?(\d{2}) ?([A-D])(?![A-Za-z0-9])"
)
_NIR_RE = re.compile(
    r"(?<![\w])[12] ?\d{2} ?(?:0[1-9]|1[0-2]|[2-9]\d) ?(?:\d{2}|2[ABab]) ?\d{3} ?\d{3} ?\d{2}(?![\w])"
)
_DNI_RE = re.compile(r"(?<![\w-])([XYZ]?)-?(\d{7,8})[ -]?([A-Z])(?![\w])")


def _find_national_ids(text: str) -> Iterator[tuple[int, int]]:
    for m in _SSN_RE.finditer(text):
        if ssn_ok(*m.groups()):
            yield m.span()
    if "ss" in text.lower() or "social" in text.lower():
        for m in _SSN_CONTEXT_RE.finditer(text):
            if ssn_ok(*m.groups()):
                yield m.start(1), m.end(3)
    for m in _NINO_RE.finditer(text):
        if nino_ok(m.group(1).upper()):
            yield m.span()
    for m in _NIR_RE.finditer(text):
        if nir_ok(m.group()):
            yield m.span()
    for m in _DNI_RE.finditer(text):
        prefix, number, letter = m.groups()
        if len(number) == (7 if prefix else 8) and dni_ok(prefix + number, letter):
            yield m.span()


# -- email ---------------------------------------------------------------------------------------

# Letters of any script on both sides of the @ (IDN: müller.de), and punycode top-level domains.
_EMAIL_RE = re.compile(
    r"(?<![\w.+%-])[^\W_][\w.%+-]{0,63}@"
    r"((?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+(?:[^\W\d_]{2,24}|xn--[a-z0-9-]{1,59}))(?![\w-]|\.[^\W_])"
)
_RETINA_ASSET_RE = re.compile(r"\d+x\.", re.ASCII)
_URL_AUTHORITY_RE = re.compile(r"://[^\s/@]*$")


# The same address URL-encoded in a query string: ?email=ravi.k%40gmail.com
_EMAIL_URLENCODED_RE = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._+-]{0,63}%40"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)


def _find_emails(text: str) -> Iterator[tuple[int, int]]:
    if "%40" in text:
        for m in _EMAIL_URLENCODED_RE.finditer(text):
            yield m.span()
    if "@" not in text:
        return
    for m in _EMAIL_RE.finditer(text):
        if _RETINA_ASSET_RE.match(m.group(1)) or _URL_AUTHORITY_RE.search(text, max(0, m.start() - 256), m.start()):
            continue  # icon@2x.png; user:pass@host in a URL belongs to the credentials detector
        # git@github.com:org/repo.git is an SSH remote, not a person's address.
        if m.group().startswith("git@") and text[m.end():m.end() + 1] == ":":
            continue
        yield m.span()


# -- MAC addresses -------------------------------------------------------------------------------

_MAC_RE = re.compile(
    r"(?<![\w:-])[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}(?![\w:-])"
    r"|(?<![\w.])[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}(?![\w.])"  # Cisco aabb.ccdd.eeff
)
# Broadcast and all-zero addresses name no device.
_NOT_A_DEVICE_MAC = frozenset({"ffffffffffff", "000000000000"})


def _find_macs(text: str) -> Iterator[tuple[int, int]]:
    # No digit test first: aa:bb:cc:dd:ee:ff has none.
    if ":" in text or "-" in text or "." in text:
        for m in _MAC_RE.finditer(text):
            compact = re.sub(r"[:.-]", "", m.group()).lower()
            if compact not in _NOT_A_DEVICE_MAC and (m.group(1) or any(c.isdigit() for c in compact)):
                yield m.span()


# -- IP addresses --------------------------------------------------------------------------------

_IPV4_RE = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_IPV6_RE = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{1,4}:|:(?=:))(?:[0-9A-Fa-f]{0,4}:){1,7}[0-9A-Fa-f]{0,4}(?![\w:])")


_CIDR_RE = re.compile(r"/(\d{1,3})(?!\d)")


def _find_ips(text: str) -> Iterator[tuple[int, int]]:
    """IPv4 and IPv6 addresses, as `ipaddress` parses them; loopback, unspecified and netmasks are not a host."""
    if "." in text:
        for m in _IPV4_RE.finditer(text):
            if _is_host(m.group()) and not m.group().startswith("255.") and not _is_network(text, m):
                yield m.span()
    if text.count(":") >= 2:
        for m in _IPV6_RE.finditer(text):
            if _is_host(m.group()):
                yield m.span()


def _is_network(text: str, m: re.Match[str]) -> bool:
    """10.0.0.0/8 names a network (host bits zero); 10.1.2.3/24 is a host's address with its mask."""
    cidr = _CIDR_RE.match(text, m.end())
    if cidr is None:
        return False
    try:
        ipaddress.ip_network(f"{m.group()}/{cidr.group(1)}", strict=True)
    except ValueError:
        return False
    return True


def _is_host(candidate: str) -> bool:
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return not (address.is_loopback or address.is_unspecified)


def _gated(find: Finder, gate: re.Pattern[str]) -> Finder:
    """Run ``find`` only on text where ``gate`` matches: most typed runs are prose, and one search is cheap."""

    def guarded(text: str) -> Iterable[tuple[int, int]]:
        return find(text) if gate.search(text) else ()

    guarded.__name__ = find.__name__
    return guarded


def _digits_only(find: Finder) -> Finder:
    return _gated(find, _DIGIT_RE)


# Three digits close together: every number these detectors look for has them somewhere
# (the codice fiscale's 969, the PAN's 1234, an IPv4's 1.2.3); "Q3" and "LIMIT 10" do not.
_DIGIT_RUN_RE = re.compile(r"\d[ ./-]?\d[ ./-]?\d")
# Two hex pairs and a separator twice, or Cisco's dotted quads: aa:bb:, AA-BB-, aabb.ccdd.
_MAC_GATE_RE = re.compile(r"[0-9A-Fa-f]{2}[:-][0-9A-Fa-f]{2}[:-]|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.")


def _digit_run(find: Finder) -> Finder:
    return _gated(find, _DIGIT_RUN_RE)


def phone_detector(regions: Sequence[str] = DEFAULT_PHONE_REGIONS) -> Detector:
    return Detector("phone", "PHONE", 80, _digit_run(PhoneFinder(regions).find))


def _find_all_national_ids(text: str) -> Iterator[tuple[int, int]]:
    yield from _find_national_ids(text)
    yield from find_national_ids(text)


PII_DETECTORS: tuple[Detector, ...] = (
    Detector("iban", "IBAN", 50, _digit_run(_find_ibans)),
    Detector("credit_card", "CREDIT_CARD", 55, _digit_run(_find_cards)),
    Detector("national_id", "NATIONAL_ID", 60, _digit_run(_find_all_national_ids)),
    Detector("id_document", "ID_DOCUMENT", 61, _digit_run(find_id_documents)),
    Detector("bank_account", "BANK_ACCOUNT", 62, _digit_run(find_bank_accounts)),
    Detector("mac_address", "MAC", 65, _gated(_find_macs, _MAC_GATE_RE)),
    Detector("ip_address", "IP", 66, _digits_only(_find_ips)),
    Detector("email", "EMAIL", 70, _find_emails),
    phone_detector(),
    Detector("person_name", "NAME", 85, find_names),
    Detector("health", "HEALTH", 86, find_health_terms),
)

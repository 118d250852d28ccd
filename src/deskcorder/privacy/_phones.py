"""Phone numbers, found by shape and confirmed by Google's libphonenumber (the ``phonenumbers`` package).

Typed text has no region, so a number is tried against `DEFAULT_PHONE_REGIONS`
(the countries a deployment is likely to see; `Redactor(phone_regions=...)`
puts the fleet's own first). A number written internationally (``+49 ...``,
``0049 ...``) names its own region.

A candidate is a run of digits with the separators people type (space, dot,
dash, slash, parentheses), 7 to 15 digits, optionally after ``+`` or ``00``.
A number with its country code is a phone number when libphonenumber calls
it *possible* (a length its plan allows). One without is when it
is valid for one of the regions and `PhoneNumberMatcher` accepts it there at
``Leniency.STRICT_GROUPING``: the digit groups as typed
must be groups the region's formats produce. That level was chosen on the
look-alikes of benchmarks/corpus: ``VALID`` lets order numbers such as
``2024-118273`` through as US numbers, ``STRICT_GROUPING`` does not, and
``EXACT_GROUPING`` loses the ``0662/47476691`` spellings people really use.

A number written the way trunk-prefix countries write theirs, an area code
with its leading ``0`` then a dash or slash (``0446-503 97``, ``030/1234567``),
is a phone number when its length is possible for a region that dials ``0``
first, valid or not: area codes change, and the shape is seldom anything else
(dates are excluded before, invoice numbers by the word before them).

Digits with no separator at all (``01512345678``) are numbers of any kind
until a word says otherwise: they count only with a phone word in the text
(``tel``, ``Handy``, ``call me``...). The same words also let through a number
libphonenumber rejects (fictional 555 numbers, typos), which is what the
previous hand-written detector did.

Each candidate costs a parse per region; results are cached per candidate
string, since the same number tends to be typed again.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence

import phonenumbers
from phonenumbers import Leniency, NumberParseException, PhoneNumberMatcher

__all__ = ["DEFAULT_PHONE_REGIONS", "PhoneFinder"]

# The regions tried for a number without a country code, in order. Chosen as the larger economies and
# the countries of the locales the project's users have asked for, not from the corpus split.
DEFAULT_PHONE_REGIONS: tuple[str, ...] = (
    "US", "GB", "DE", "FR", "ES", "IT", "NL", "BE", "CH", "AT", "PL", "CZ", "SK", "HU", "RO", "BG", "GR", "PT",
    "IE", "SE", "NO", "DK", "FI", "EE", "LV", "LT", "HR", "SI", "UA", "RU", "TR", "IL", "AE", "SA", "EG", "ZA",
    "NG", "KE", "IN", "PK", "BD", "CN", "HK", "TW", "JP", "KR", "SG", "MY", "TH", "VN", "PH", "ID", "AU", "NZ",
    "CA", "MX", "BR", "AR", "CL", "CO", "PE",
)

_CANDIDATE_RE = re.compile(
    r"(?<![\w+./-])(?:\(?\+|00(?=[1-9]))?\(?\d(?:[ .()/-]{0,2}\d){6,16}"
    r"(?P<ext>(?: ?(?:x|ext\.?|#) ?\d{1,5}))?(?![\w]|[.,/-]\d)"
)
_SEPARATOR_RE = re.compile(r"[ .()/-]")
_PHONE_WORDS_RE = re.compile(
    r"(?i)\b(?:tel|t[ée]l[ée]phone|phone|ph|mobile?|mobil|cell|fax|call(?: me)?|ring|text me|sms|whatsapp|signal"
    r"|handy|telefon|rufnummer|nummer|portable|t[ée]l[ée]fono|cellulare|celular|m[oó]vil|n[uú]mero|num[eé]ro"
    r"|numer|telefonu?|puhelin|tlf|reach me|my number|contact number)\b"
)
_DATE_LIKE_RE = re.compile(r"^\d{1,4}([./-])\d{1,2}\1\d{1,4}$")
# Shapes that are other numbers: a decimal (48.858370, build 22631.3296), round thousands (67 750 000).
_NOT_A_NUMBER_RE = re.compile(r"^\d+\.\d+$|^\d{1,3}(?:[ ,.]\d{3})*[ ,.]000$")
# Words right before a number that say it is something else: ZIP 94103-1234, Rechnung Nr. 0815-4711.
_OTHER_NUMBER_RE = re.compile(
    r"(?i)\b(?:zip|zip code|postcode|postal code|plz|order|invoice|rechnung|bestellung|nr|no|ticket|case|build"
    r"|version|ref|id|lat|lon|lng|sku|serial|isbn|po)\.?\s*[#:]?\s*$"
)
# 0 + area code + dash or slash: how Swedes, Germans, Austrians, Swiss... write a national number.
_TRUNK_AREA_RE = re.compile(r"^0\d{1,4}[-/] ?\d")
_CACHE_SIZE = 8192
_WORD_WINDOW = 32  # characters before a number in which a phone word counts


class PhoneFinder:
    """``find(text)`` yields the spans of phone numbers in ``text`` (see the module docstring)."""

    def __init__(self, regions: Sequence[str] = DEFAULT_PHONE_REGIONS) -> None:
        unknown = [r for r in regions if r not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise ValueError(f"phone_regions {unknown} are not ISO 3166 regions libphonenumber knows "
                             "(use two-letter codes such as 'DE', 'US')")
        self.regions = tuple(regions)
        self._confirmed = functools.lru_cache(maxsize=_CACHE_SIZE)(self._confirm)

    # A Redactor travels to Dask workers by pickle; the cache (a bound lru_cache) cannot, so it is
    # left behind and rebuilt empty on the other side.
    def __getstate__(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k != "_confirmed"}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._confirmed = functools.lru_cache(maxsize=_CACHE_SIZE)(self._confirm)

    def find(self, text: str) -> Iterator[tuple[int, int]]:
        for m in _CANDIDATE_RE.finditer(text):
            s, start, end = m.group(), m.start(), m.end()
            if m.group("ext"):
                s = s[:m.start("ext") - start]  # 0151 2345678 x12: the extension is redacted with the number
            if s.startswith("(+"):
                s = s[1:].replace(")", "", 1)  # (+358) 431704213
            if s.count("(") != s.count(")") and s.startswith("("):
                s, start = s[1:], start + 1  # "(0151 2345678" typed without the closing one
            if _NOT_A_NUMBER_RE.match(s) or _OTHER_NUMBER_RE.search(text, max(0, start - 24), start):
                continue
            bare = not _SEPARATOR_RE.search(s) and not s.startswith("+")
            dateish = bool(_DATE_LIKE_RE.match(s))
            if (bare or dateish) and not _worded(text, start, end):
                continue
            if self._confirmed(s):
                yield start, end
            elif not dateish and 7 <= _digits(s) <= 15 and _worded(text, start, end):
                yield start, end

    def _confirm(self, s: str) -> bool:
        if s.startswith(("+", "00")):
            # A country code is signal enough: valid for its region, however the groups are typed
            # (Faker and people alike write +43 2284 20557 320, which no AT format produces).
            try:
                number = phonenumbers.parse("+" + s.lstrip("+")[2 if s.startswith("00") else 0:], None)
            except NumberParseException:
                return False
            # Possible (a length the plan allows) rather than valid: fictional ranges such as Ofcom's
            # +44 7700 900xxx are typed as contact numbers in examples and templates all the same.
            return phonenumbers.is_possible_number(number)
        for region in self.regions:
            try:
                number = phonenumbers.parse(s, region)
            except NumberParseException:
                continue
            if phonenumbers.is_valid_number_for_region(number, region) and _matches(s, region):
                return True
        return bool(_TRUNK_AREA_RE.match(s)) and 8 <= _digits(s) <= 12 and any(
            _possible_with_trunk(s, region) for region in self.regions)


def _worded(text: str, start: int, end: int) -> bool:
    """A phone word just before the number (``tel.``, ``call me on``) or just after it (``(cell)``)."""
    return bool(_PHONE_WORDS_RE.search(text, max(0, start - _WORD_WINDOW), start)
                or _PHONE_WORDS_RE.search(text[end:end + 12]))


def _matches(s: str, region: str) -> bool:
    """The whole candidate is one number at STRICT_GROUPING for ``region``."""
    for match in PhoneNumberMatcher(s, region, leniency=Leniency.STRICT_GROUPING):
        return match.start == 0 and match.end >= len(s.rstrip(")"))
    return False


def _digits(s: str) -> int:
    return sum(c.isdigit() for c in s)


@functools.lru_cache(maxsize=None)
def _dials_zero_first(region: str) -> bool:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    return metadata is not None and metadata.national_prefix == "0"


def _possible_with_trunk(s: str, region: str) -> bool:
    if not _dials_zero_first(region):
        return False
    try:
        number = phonenumbers.parse(s, region)
    except NumberParseException:
        return False
    return phonenumbers.is_possible_number(number)

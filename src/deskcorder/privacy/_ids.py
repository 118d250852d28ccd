"""National ids and tax ids of many countries, by shape then by their own checksum (python-stdnum).

A candidate is a run of letter/digit groups joined by one separator each
(``811228-9874``, ``390.533.447-05``, ``2 53 07 2A 073 004 43``); every
stretch of consecutive groups that holds digits is tried against the ids
of its compact length, and python-stdnum's ``is_valid`` decides. The check
digit is what keeps precision: a random number passes a mod-11 check one
time in eleven, a date plus a check digit about one in fifty, two check
digits one in a hundred.

So each id in `ID_SPECS` has two shapes:

- ``strong``: how the id is typed when nothing else is around it. Used for
  formats with separators nothing else uses (CPF ``ddd.ddd.ddd-dd``, Swedish
  ``yymmdd-nnnn``) and for bare digits where the check is strong (PESEL,
  TCKN, fødselsnummer, CNPJ, RRN, ZA, codice fiscale);
- ``weak``: shapes that, bare, would take order numbers with them (9-digit
  SIN and BSN pass one in ten). They count only behind a word that names
  the id (``SIN``, ``BSN``, ``Aadhaar``...) or a generic one
  (``national id``, ``personal number``, ``tax id``) in the 40 characters
  before.

Bank account numbers other than IBANs (BBANs, US account and routing
numbers, UK sort code and account) likewise: 6 or more digits right after
``account number``, ``Konto-Nr.``, ``numéro de compte``... are a
``BANK_ACCOUNT``.

Passports and driver licences have no shared checksum: a number of 6 to 14
letters and digits (at least 5 digits) right after a word that names the
document (passport, Reisepass, passeport, pasaporte, driver's licence,
Führerschein, ...) is an ``ID_DOCUMENT``. Without such a word they are not
found.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from typing import Any, NamedTuple

__all__ = ["ID_SPECS", "IdSpec", "find_bank_accounts", "find_id_documents", "find_national_ids"]


class IdSpec(NamedTuple):
    module: str  # python-stdnum module under stdnum.
    lengths: tuple[int, ...]  # compact lengths
    strong: str | None  # typed shape accepted anywhere (fullmatch)
    weak: str | None  # typed shape accepted behind a cue word
    cues: str  # words that name this id (regular expression, case-insensitive)


ID_SPECS: tuple[IdSpec, ...] = (
    IdSpec("se.personnummer", (10, 12), r"\d{6}[-+]\d{4}|\d{8}-\d{4}", r"\d{10}|\d{12}", r"personn(?:umme)?r"),
    IdSpec("dk.cpr", (10,), r"\d{6}-\d{4}", r"\d{10}", r"cpr(?:-nummer)?"),
    IdSpec("is_.kennitala", (10,), r"\d{6}-\d{4}", r"\d{10}", r"kennitala"),
    IdSpec("no.fodselsnummer", (11,), r"\d{11}|\d{6} \d{5}", None, r"f[øo]dselsnummer|personnummer"),
    IdSpec("fi.hetu", (10, 11), r"\d{6}[-+A-FU-Ya-fu-y]\d{3}[0-9A-Ya-y]", None, r"henkil[öo]tunnus|hetu"),
    IdSpec("pl.pesel", (11,), r"\d{11}", None, r"pesel"),
    IdSpec("tr.tckimlik", (11,), r"\d{11}", None, r"t\.?c\.? ?kimlik|tckn|kimlik"),
    IdSpec("br.cpf", (11,), r"\d{3}\.\d{3}\.\d{3}-\d{2}|\d{11}", None, r"cpf"),
    IdSpec("br.cnpj", (14,), r"\d{2}\.\d{3}\.\d{3}/\d{4}-\d{2}|\d{14}", None, r"cnpj"),
    IdSpec("be.nn", (11,), r"\d{2}\.\d{2}\.\d{2}-\d{3}\.\d{2}|\d{11}", r"\d{6}[- ]?\d{3}[ .]?\d{2}",
           r"rijksregister\w*|num[ée]ro national|national number|insz|niss"),
    IdSpec("ee.ik", (11,), r"\d{11}", None, r"isikukood"),
    IdSpec("lt.asmens", (11,), None, r"\d{11}", r"asmens kodas"),
    IdSpec("hr.oib", (11,), None, r"\d{11}", r"oib"),
    IdSpec("gr.amka", (11,), None, r"\d{11}", r"amka"),
    IdSpec("de.idnr", (11,), None, r"\d{11}|\d{2} \d{3} \d{3} \d{3}",
           r"steuer-?id\w*|steueridentifikationsnummer|identifikationsnummer|idnr|tax id"),
    IdSpec("kr.rrn", (13,), r"\d{6}-?\d{7}", None, r"rrn|주민등록번호|resident registration"),
    IdSpec("za.idnr", (13,), r"\d{13}|\d{6} \d{4} \d{2} \d", None, r"sa id|id number|identity number"),
    IdSpec("ro.cnp", (13,), r"\d{13}", None, r"cnp"),
    IdSpec("th.pin", (13,), r"\d-\d{4}-\d{5}-\d{2}-\d|\d \d{4} \d{5} \d{2} \d", r"\d{13}",
           r"thai id|เลขประจำตัวประชาชน|บัตรประชาชน"),
    IdSpec("ch.ssn", (13,), r"756\.\d{4}\.\d{4}\.\d{2}|756\d{10}", None, r"ahv|avs|sozialversicherungsnummer"),
    IdSpec("in_.aadhaar", (12,), r"\d{4} \d{4} \d{4}", r"\d{12}|\d{4}-\d{4}-\d{4}", r"aadhaa?r|uid"),
    IdSpec("in_.pan", (10,), r"[A-Z]{5}\d{4}[A-Z]", r"[A-Za-z]{5}\d{4}[A-Za-z]", r"pan(?: card| no)?"),
    IdSpec("ca.sin", (9,), None, r"\d{3}[ -]?\d{3}[ -]?\d{3}", r"sin|social insurance(?: number)?|nas"),
    IdSpec("nl.bsn", (9,), r"\d{4}\.\d{2}\.\d{3}", r"\d{9}", r"bsn|burgerservicenummer|sofi-?nummer"),
    IdSpec("us.ssn", (9,), None, r"\d{9}|\d{3} \d{2} \d{4}", r"ssn|social security(?: number| no\.?)?"),
    IdSpec("il.idnr", (9,), None, r"\d{8}-?\d|\d{9}", r"teudat zehut|israeli id"),
    IdSpec("it.codicefiscale", (16,), r"[A-Za-z]{6}[0-9LMNPQRSTUVlmnpqrstuv]{2}[A-Za-z][0-9A-Za-z]{2}[A-Za-z][0-9A-Za-z]{3}"
           r"[A-Za-z]", None, r"codice fiscale|cf"),
    IdSpec("mx.curp", (18,), r"[A-Z]{4}\d{6}[HMX][A-Z]{5}[0-9A-Z]\d", None, r"curp"),
    IdSpec("cn.ric", (18,), r"\d{17}[\dXx]", None, r"身份证号?|ric|id card"),
    IdSpec("cl.rut", (8, 9), r"\d{1,2}\.\d{3}\.\d{3}-[\dkK]", r"\d{7,8}-?[\dkK]", r"rut|run"),
    IdSpec("cz.rc", (9, 10), r"\d{6}/\d{3,4}", r"\d{9,10}", r"rodn[ée] [čc][íi]slo|r\.?[čc]\."),
    IdSpec("ie.pps", (8, 9), r"\d{7}[A-Wa-w][A-IWa-iw]?", None, r"pps(?:n| number)?"),
    IdSpec("gb.nhs", (10,), None, r"\d{3} ?\d{3} ?\d{4}", r"nhs(?: number| no)?"),
    IdSpec("bg.egn", (10,), None, r"\d{10}", r"egn|егн"),
)

_GENERIC_CUES = (
    r"national id|national identity|identity (?:number|card|no)|id (?:number|no|nr|card)|personal (?:number|code|id)"
    r"|personal identity|tax (?:id|number|identification)|citizen id|identification number|ausweis\w*"
    r"|personalausweis|dowód|numéro d'identification|documento de identidad|c[ée]dula"
)
_CUE_WINDOW = 40  # characters before a candidate in which a word naming the id counts

# Letter/digit groups joined by single separators; a group is at most 18 characters (CURP, RIC).
_RUN_RE = re.compile(r"(?<![\w@#$%&*/\\.+-])[0-9A-Za-z]{1,18}(?:[ ./-][0-9A-Za-z]{1,18})*")
_GROUP_RE = re.compile(r"[0-9A-Za-z]+")
_MAX_GROUPS = 6  # 2 53 07 2A 073 004 43 has seven: the NIR has a detector of its own


class _Compiled(NamedTuple):
    spec: IdSpec
    strong: re.Pattern[str] | None
    weak: re.Pattern[str] | None
    cue: re.Pattern[str]
    validate: Any  # stdnum module's is_valid


def _compile() -> dict[int, list[_Compiled]]:
    by_length: dict[int, list[_Compiled]] = {}
    for spec in ID_SPECS:
        module = importlib.import_module(f"stdnum.{spec.module}")
        compiled = _Compiled(
            spec,
            re.compile(spec.strong) if spec.strong else None,
            re.compile(spec.weak) if spec.weak else None,
            re.compile(rf"(?i)(?<![\w])(?:{spec.cues}|{_GENERIC_CUES})(?![\w])"),
            module.is_valid,
        )
        for n in spec.lengths:
            by_length.setdefault(n, []).append(compiled)
    return by_length


_BY_LENGTH = _compile()
_MIN_LENGTH, _MAX_LENGTH = min(_BY_LENGTH), max(_BY_LENGTH)


def _accepts(candidate: str, text: str, start: int) -> bool:
    compact = candidate.replace(" ", "").replace(".", "").replace("-", "").replace("/", "")
    for c in _BY_LENGTH.get(len(compact), ()):
        if c.strong is not None and c.strong.fullmatch(candidate):
            pass
        elif c.weak is not None and c.weak.fullmatch(candidate):
            if not c.cue.search(text, max(0, start - _CUE_WINDOW), start):
                continue
        else:
            continue
        try:
            if c.validate(candidate):
                return True
        except Exception:  # noqa: BLE001 - a stdnum module that trips on odd input rejects it
            continue
    return False


def find_national_ids(text: str) -> Iterator[tuple[int, int]]:
    for run in _RUN_RE.finditer(text):
        groups = [(run.start() + g.start(), run.start() + g.end()) for g in _GROUP_RE.finditer(run.group())]
        has_digit = [any(ch.isdigit() for ch in text[a:b]) for a, b in groups]
        i = 0
        while i < len(groups):
            if not has_digit[i]:  # a letters-only group starts no id (ABCDE1234F is one group)
                i += 1
                continue
            best = None
            length = 0
            for j in range(i, min(len(groups), i + _MAX_GROUPS)):
                length += groups[j][1] - groups[j][0]
                if length > _MAX_LENGTH:
                    break
                if length >= _MIN_LENGTH:
                    a, b = groups[i][0], groups[j][1]
                    if _accepts(text[a:b], text, a):
                        best = j
            if best is None or _inside_longer_number(text, groups, has_digit, i, best):
                i += 1
                continue
            yield groups[i][0], groups[best][1]
            i = best + 1


def _inside_longer_number(text: str, groups: list[tuple[int, int]], has_digit: list[bool], i: int, j: int) -> bool:
    """``Order 5105 1051 0510 5101``: twelve of sixteen digits are no id; a digit group joins either end."""
    before = i > 0 and has_digit[i - 1] and text[groups[i - 1][1]:groups[i][0]] in (" ", "-", ".", "/")
    after = j + 1 < len(groups) and has_digit[j + 1] and text[groups[j][1]:groups[j + 1][0]] in (" ", "-", ".", "/")
    return before or after


_DOCUMENT_RE = re.compile(
    r"(?i)(?<![\w])(?:passport|pass ?port|reisepass\w*|passeport|pasaporte|passaporto|paspoort|paszport\w*|pas"
    r"|driver'?s? ?licen[cs]e|driving licen[cs]e|dl|führerschein\w*|fuehrerschein\w*|permis de conduire"
    r"|licencia de conducir|carnet de conducir|patente di guida|rijbewijs|prawo jazdy)"
    r"(?:\s*(?:no\.?|number|num(?:ber|éro|ero)?\.?|nr\.?|#|nummer|numer|is|:|=|-))*\s*"
    r"(?<![\w])([A-Za-z]{0,3}\d[\dA-Za-z]{4,13}|\d{2} \d{2} \d{6})(?![\w])"
)


def find_id_documents(text: str) -> Iterator[tuple[int, int]]:
    for m in _DOCUMENT_RE.finditer(text):
        value = m.group(1)
        if sum(ch.isdigit() for ch in value) >= 5:
            yield m.span(1)


# Account numbers outside IBAN (US, UK sort code + account, BBANs) have no shape of their own either.
_ACCOUNT_RE = re.compile(
    r"(?i)(?<![\w])(?:(?:bank )?account|acct|a/c|konto|kontonummer|konto-?nr|compte|cuenta|conto|rekening"
    r"|rachunek|numer konta|sort code|routing(?: number)?|bsb)"
    r"(?:\s*(?:no\.?|number|num(?:ber|éro|ero)?\.?|nr\.?|#|de|:|=|is|-))*\s*"
    r"(?<![\w])([A-Za-z]{0,6}\d[\dA-Za-z]*(?:[ -]\d[\dA-Za-z]*)*)(?![\w])"
)


_PLACEHOLDER_DIGITS_RE = re.compile(r"(?:1234 ?5678|(\d)\1{5})")


def find_bank_accounts(text: str) -> Iterator[tuple[int, int]]:
    for m in _ACCOUNT_RE.finditer(text):
        value = m.group(1).rstrip(" -")
        if sum(ch.isdigit() for ch in value) >= 6 and not _PLACEHOLDER_DIGITS_RE.search(value):
            yield m.start(1), m.start(1) + len(value)

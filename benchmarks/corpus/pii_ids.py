"""National ids, tax ids and identity documents, valid by their own checksums (python-stdnum).

Values: dev takes python-stdnum's own documented valid examples and makes new
ones from them (change a few serial digits, then search the check digits
that make ``is_valid`` true again); held-out takes Faker's per-locale
``ssn()`` generators where python-stdnum accepts what they produce, and the
mutated examples otherwise. Each value appears as python-stdnum formats it
and in its compact form, in a context that names the id (as a form or a
chat would) or in a generic one.

Passports and driver licences have no checksum that the world shares:
they are placed only behind the words that name them (``passport no.``,
``Reisepass``, ``driver's license``), which is what the detector relies on.
"""

from __future__ import annotations

import importlib
import random
import re
import string
from collections.abc import Iterator
from functools import cache

from faker import Faker

from . import Sample, halves, place
from ._contexts import wrap

# (category suffix, stdnum module, seed examples missing from the module docstring, Faker locale, cue words).
# Ids whose check lets one random number in ten or more pass (``_NAMED_ONLY``: Luhn, 11-proof, Verhoeff, no
# check at all) are placed behind a word that names them only: bare, the same digits are an order number of
# the look-alike set, and no detector can tell the two apart.
IDS: tuple[tuple[str, str, tuple[str, ...], str | None, tuple[str, ...]], ...] = (
    ("se-personnummer", "se.personnummer", (), "sv_SE", ("personnummer", "personnr")),
    ("dk-cpr", "dk.cpr", (), None, ("CPR", "CPR-nummer")),
    ("no-fodselsnummer", "no.fodselsnummer", (), "no_NO", ("fødselsnummer", "personnummer")),
    ("fi-hetu", "fi.hetu", (), "fi_FI", ("henkilötunnus", "HETU")),
    ("is-kennitala", "is_.kennitala", ("4504013150", "1201743399"), None, ("kennitala",)),
    ("pl-pesel", "pl.pesel", (), "pl_PL", ("PESEL", "nr PESEL")),
    ("br-cpf", "br.cpf", (), "pt_BR", ("CPF", "meu CPF")),
    ("br-cnpj", "br.cnpj", (), None, ("CNPJ",)),
    ("ca-sin", "ca.sin", (), "en_CA", ("SIN", "social insurance number")),
    ("in-aadhaar", "in_.aadhaar", (), None, ("Aadhaar", "aadhaar no")),
    ("in-pan", "in_.pan", (), None, ("PAN", "PAN card")),
    ("kr-rrn", "kr.rrn", (), "ko_KR", ("주민등록번호", "RRN")),
    ("tr-tckn", "tr.tckimlik", (), "tr_TR", ("TC kimlik no", "TCKN")),
    ("za-id", "za.idnr", (), None, ("ID number", "SA ID")),
    ("th-id", "th.pin", (), None, ("เลขประจำตัวประชาชน", "Thai ID")),
    ("nl-bsn", "nl.bsn", (), "nl_NL", ("BSN", "burgerservicenummer")),
    ("be-nn", "be.nn", (), "nl_BE", ("rijksregisternummer", "numéro national")),
    ("it-codice-fiscale", "it.codicefiscale", ("RCCMNL83S18D969H", "MRTMTT91D08F205J"), "it_IT", ("codice fiscale", "CF")),
    ("de-steuer-id", "de.idnr", (), None, ("Steuer-ID", "Steueridentifikationsnummer")),
    ("us-ssn", "us.ssn", (), "en_US", ("SSN", "social security number")),
    ("fr-nir", "fr.nir", (), "fr_FR", ("numéro de sécu", "NIR")),
    ("es-dni", "es.dni", (), None, ("DNI",)),
    ("es-nie", "es.nie", (), None, ("NIE",)),
    ("ro-cnp", "ro.cnp", (), "ro_RO", ("CNP",)),
    ("cz-rc", "cz.rc", (), "cs_CZ", ("rodné číslo",)),
    ("ee-isikukood", "ee.ik", (), "et_EE", ("isikukood",)),
    ("mx-curp", "mx.curp", (), None, ("CURP",)),
    ("cl-rut", "cl.rut", (), None, ("RUT",)),
    ("cn-ric", "cn.ric", (), "zh_CN", ("身份证号", "ID card")),
    ("ch-ahv", "ch.ssn", (), "de_CH", ("AHV-Nr.", "AVS")),
    ("ie-pps", "ie.pps", ("6433435F", "6433435OA"), None, ("PPS number", "PPSN")),
    ("gb-nhs", "gb.nhs", (), None, ("NHS number",)),
)

_NAMED_ONLY = frozenset({"ca.sin", "in_.aadhaar", "nl.bsn", "de.idnr", "us.ssn", "gb.nhs", "dk.cpr", "is_.kennitala"})
# One check digit only: typed bare in a generic context they are shaped as python-stdnum formats them.
_FORMATTED_IF_UNNAMED = frozenset({"th.pin", "cl.rut", "cz.rc"})
_DOC_EXAMPLE_RE = re.compile(r">>> validate\('([^']+)'\)\n'([^']+)'")

_DEV_CUES = ("my {cue} is {}", "{cue}: {}", "{cue} {}", "please update the {cue} to {}")
_HELDOUT_CUES = ("{cue} = {}", "here's my {cue} {} thx", "{cue} no. {}", "new {cue} -> {}")

# Identity documents: no shared checksum, so always behind the words that name them.
_DOC_DEV = (
    ("passport", "passport no. {}"), ("passport", "my passport number is {}"),
    ("passport", "Reisepassnummer: {}"), ("passport", "numéro de passeport {}"),
    ("driver-licence", "driver's license {}"), ("driver-licence", "Führerscheinnummer {}"),
)
_DOC_HELDOUT = (
    ("passport", "passport # {}"), ("passport", "Passport Number: {}"),
    ("passport", "número de pasaporte {}"), ("passport", "numer paszportu {}"),
    ("driver-licence", "DL number {}"), ("driver-licence", "driving licence no {}"),
)


@cache
def _module(name: str):
    return importlib.import_module(f"stdnum.{name}")


@cache
def _examples(name: str, extra: tuple[str, ...]) -> tuple[str, ...]:
    module = _module(name)
    found = [compact for _, compact in _DOC_EXAMPLE_RE.findall(module.__doc__ or "")]
    return tuple(v for v in (*found, *extra) if module.is_valid(v))


def _mutated(rng: random.Random, name: str, seed: str) -> str | None:
    """A new valid number shaped like ``seed``: a few serial digits changed, check characters searched."""
    module = _module(name)
    compact = module.compact(seed)
    chars = list(compact)
    digits = [i for i, c in enumerate(chars) if c.isdigit()]
    # Change digits in the second half only: the first half usually holds a birth date or a region.
    tail = [i for i in digits if i >= len(chars) // 2][:-1] or digits[:-1]
    for i in rng.sample(tail, k=min(len(tail), 3)):
        chars[i] = rng.choice(string.digits)
    alphabet = string.digits if compact[-1].isdigit() else string.ascii_uppercase
    for _ in range(400):
        candidate = "".join(chars[:-2]) + (
            rng.choice(string.digits) if chars[-2].isdigit() else chars[-2]) + rng.choice(alphabet)
        if module.is_valid(candidate):
            return candidate
    return None


def _faker_value(rng: random.Random, name: str, locale: str) -> str | None:
    fake = Faker(locale)
    fake.seed_instance(rng.randrange(1 << 30))
    for _ in range(20):
        value = fake.ssn()
        if _module(name).is_valid(value):
            return value
    return None


def _typed(rng: random.Random, name: str, value: str) -> str:
    """As a person would type it: the official formatting or the bare characters."""
    module = _module(name)
    if rng.random() < 0.5 and hasattr(module, "format"):
        try:
            return module.format(value)
        except Exception:  # noqa: BLE001 - some modules format only some variants
            pass
    return module.compact(value)


def generate(rng: random.Random, *, split: str) -> Iterator[Sample]:
    cue_templates = _DEV_CUES if split == "dev" else _HELDOUT_CUES
    for suffix, name, extra, locale, cues in IDS:
        seeds = _examples(name, extra)
        if not seeds:
            raise RuntimeError(f"python-stdnum {name} has no valid example: give one in IDS")
        for i in range(24):
            value = None
            if split == "heldout" and locale and i % 2 == 0:
                value = _faker_value(rng, name, locale)
            value = value or _mutated(rng, name, rng.choice(seeds))
            if value is None:
                continue
            typed = _typed(rng, name, value)
            category = f"pii/national-id/{suffix}"
            if i % 3 == 2 and name not in _NAMED_ONLY:  # one in three without a word that names it
                family, template = wrap(rng, split)
                if name in _FORMATTED_IF_UNNAMED:
                    typed = _module(name).format(value)
                yield place(template, [(typed, "NATIONAL_ID")], category=category, context=family)
            else:
                template = rng.choice(cue_templates).replace("{cue}", rng.choice(cues).replace("{", "{{"))
                yield place(template, [(typed, "NATIONAL_ID")], category=category, context="cue")
    yield from _documents(rng, split)
    yield from _ssn_and_nino(rng, split)


def _documents(rng: random.Random, split: str) -> Iterator[Sample]:
    locales = halves(("en_US", "de_DE", "fr_FR", "en_GB", "it_IT", "es_ES", "pl_PL", "nl_NL"), split)
    for category, template in (_DOC_DEV if split == "dev" else _DOC_HELDOUT):
        for _ in range(10):
            fake = Faker(rng.choice(locales))
            fake.seed_instance(rng.randrange(1 << 30))
            if category == "passport":
                value = fake.passport_number()
            else:  # no Faker provider: US/EU licence shapes (letter + 7-12 digits, or 2 letters + digits)
                value = rng.choice(string.ascii_uppercase) + "".join(rng.choices(string.digits, k=rng.randint(7, 12)))
            yield place(template, [(value, "ID_DOCUMENT")], category=f"pii/id-document/{category}", context="cue")


def _ssn_and_nino(rng: random.Random, split: str) -> Iterator[Sample]:
    """The evaluation's misses: SSN without separators in a sentence, NINO in lower case."""
    ssn_templates = halves(("my ssn is {} ok", "social security number {} for the form", "SSN:{}",
                            "the social security no is {}", "ssn {}", "Social Security Number - {}"), split)
    nino_templates = halves(("NI number {}", "my national insurance number is {}", "nino: {}", "NINO {}"), split)
    for _ in range(16):
        area = rng.choice([n for n in range(1, 900) if n != 666])
        ssn = f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"
        yield place(rng.choice(ssn_templates), [(ssn, "NATIONAL_ID")], category="pii/national-id/us-ssn-bare",
                    context="cue")
        first = rng.choice("ABCEGHJKLMNOPRSTWXYZ")
        second = rng.choice("ABCEGHJKLMNPRSTWXYZ")
        while first + second in ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ"):
            second = rng.choice("ABCEGHJKLMNPRSTWXYZ")
        digits = "".join(rng.choices(string.digits, k=6))
        nino = f"{first}{second}{digits}{rng.choice('ABCD')}"
        if rng.random() < 0.5:
            nino = f"{nino[:2]} {nino[2:4]} {nino[4:6]} {nino[6:8]} {nino[8]}"
        nino = nino.lower() if rng.random() < 0.6 else nino
        yield place(rng.choice(nino_templates), [(nino, "NATIONAL_ID")], category="pii/national-id/gb-nino",
                    context="cue")

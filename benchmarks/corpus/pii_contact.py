"""E-mail addresses, phone numbers, IBANs, card numbers and bank accounts from Faker across 24 locales.

The locales are split in two disjoint halves (`LOCALES`, `halves`): dev
draws from one, held-out from the other, so national phone formats, name
spellings in addresses and IBAN countries of the held-out part were never
seen while tuning. Phone numbers are kept only where libphonenumber
calls them valid for the locale's region (Faker's are made up and some are
not dialable); a second source is libphonenumber's own example number per
region and type, with its subscriber digits changed and checked valid again,
typed in the national, international and E.164 formats.

Digits typed bare (no ``+``, no grouping) appear behind a cue word only:
without one they are the order numbers of the look-alike set.

E-mail domains include internationalised ones, as typed (``müller.de``) and
as punycode (``xn--mller-kva.de``).
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterator

import phonenumbers
from faker import Faker
from phonenumbers import PhoneNumberFormat, PhoneNumberType
from stdnum import iban as stdnum_iban

from . import Sample, halves, place
from ._contexts import wrap

# locale -> phone region. Alternating so that each half spans several continents and scripts.
LOCALES: tuple[tuple[str, str], ...] = (
    ("en_US", "US"), ("de_DE", "DE"), ("fr_FR", "FR"), ("en_GB", "GB"), ("es_ES", "ES"), ("it_IT", "IT"),
    ("pl_PL", "PL"), ("nl_NL", "NL"), ("pt_BR", "BR"), ("sv_SE", "SE"), ("no_NO", "NO"), ("da_DK", "DK"),
    ("fi_FI", "FI"), ("en_CA", "CA"), ("en_IN", "IN"), ("ko_KR", "KR"), ("tr_TR", "TR"), ("th_TH", "TH"),
    ("cs_CZ", "CZ"), ("ro_RO", "RO"), ("hu_HU", "HU"), ("pt_PT", "PT"), ("de_AT", "AT"), ("de_CH", "CH"),
    ("en_AU", "AU"), ("ja_JP", "JP"), ("es_MX", "MX"), ("el_GR", "GR"), ("uk_UA", "UA"), ("nl_BE", "BE"),
)
_IDN_DOMAINS = (
    ("müller.de", "xn--mller-kva.de"), ("bücher.ch", "xn--bcher-kva.ch"), ("café.fr", "xn--caf-dma.fr"),
    ("españa.es", "xn--espaa-rta.es"), ("żółw.pl", "xn--w-uga1v8h.pl"), ("例え.jp", "xn--r8jz45g.jp"),
    ("straße.at", "xn--strae-oqa.at"), ("ñandú.mx", "xn--and-6ma2c.mx"),
)
_PHONE_CUES = {
    "dev": ("call me on {}", "tel. {}", "my number is {}", "Mobile: {}", "whatsapp {}", "Telefon {}"),
    "heldout": ("ring me at {}", "ph: {}", "Handy: {}", "mon portable : {}", "reach me at {} after 5", "{} (cell)"),
}
_MAIL_CUES = {
    "dev": ("mail me at {}", "From: Alex <{}>", "git config user.email {}", "send it to {} pls"),
    "heldout": ("reply-to: {}", "cc {}", "my address is {} btw", "mailto:{}"),
}
_IBAN_CUES = {
    "dev": ("IBAN: {}", "please transfer to {}", "Kontonummer (IBAN) {}"),
    "heldout": ("pay into {} by friday", "iban {}", "RIB / IBAN : {}"),
}
_CARD_CUES = {
    "dev": ("card {} exp 12/27", "my visa is {}", "cc number: {}"),
    "heldout": ("paid with {} yesterday", "Kartennummer {}", "tarjeta {}"),
}
_ACCOUNT_CUES = {
    "dev": ("account number {}", "Konto-Nr. {}", "acct no: {}"),
    "heldout": ("bank account {}", "numéro de compte {}", "account # {}"),
}


def _fakers(rng: random.Random, split: str) -> list[tuple[Faker, str]]:
    out = []
    for locale, region in halves(LOCALES, split):
        fake = Faker(locale)
        fake.seed_instance(rng.randrange(1 << 30))
        out.append((fake, region))
    return out


def _valid_phone(text: str, region: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(text, region))
    except phonenumbers.NumberParseException:
        return False


def _example_phone(rng: random.Random, region: str) -> str | None:
    kind = rng.choice((PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE))
    example = phonenumbers.example_number_for_type(region, kind)
    if example is None:
        return None
    national = str(example.national_number)
    for _ in range(50):
        digits = national[:-4] + "".join(rng.choices(string.digits, k=4))
        number = phonenumbers.parse(f"+{example.country_code}{digits}")
        if phonenumbers.is_valid_number(number):
            fmt = rng.choice((PhoneNumberFormat.NATIONAL, PhoneNumberFormat.INTERNATIONAL, PhoneNumberFormat.E164))
            return phonenumbers.format_number(number, fmt)
    return None


def _sample(rng: random.Random, split: str, value: str, kind: str, cues: dict[str, tuple[str, ...]],
            category: str) -> Sample:
    # A national number typed as bare digits is an order number to anyone without the word "phone":
    # such values appear behind a cue only (the look-alike set holds the same digits).
    bare = kind == "PHONE" and value.isdigit()
    if bare or rng.random() < 0.5:
        return place(rng.choice(cues[split]), [(value, kind)], category=category, context="cue")
    family, template = wrap(rng, split)
    return place(template, [(value, kind)], category=category, context=family)


def generate(rng: random.Random, *, split: str) -> Iterator[Sample]:
    for fake, region in _fakers(rng, split):
        cc = region.lower()
        made = 0
        for _ in range(60):
            value = fake.phone_number()
            if _valid_phone(value, region):
                yield _sample(rng, split, value, "PHONE", _PHONE_CUES, f"pii/phone/{cc}")
                made += 1
                if made == 8:
                    break
        for _ in range(8):
            value = _example_phone(rng, region)
            if value:
                yield _sample(rng, split, value, "PHONE", _PHONE_CUES, f"pii/phone/{cc}")
        for _ in range(6):
            yield _sample(rng, split, fake.email(), "EMAIL", _MAIL_CUES, "pii/email/plain")
        try:
            iban = fake.iban()
        except AttributeError:
            iban = None
        if iban and iban[:2].upper() == region and stdnum_iban.is_valid(iban):
            for _ in range(4):
                value = fake.iban()
                if rng.random() < 0.5:
                    value = " ".join(value[i:i + 4] for i in range(0, len(value), 4))
                yield _sample(rng, split, value, "IBAN", _IBAN_CUES, f"pii/iban/{cc}")
        for _ in range(3):
            yield _sample(rng, split, fake.credit_card_number(), "CREDIT_CARD", _CARD_CUES, "pii/credit-card")
        if region in ("US", "GB", "DE", "FR", "CA", "AU", "NL", "PL", "BR", "IN"):
            for _ in range(3):
                yield place(rng.choice(_ACCOUNT_CUES[split]), [(fake.bban(), "BANK_ACCOUNT")],
                            category="pii/bank-account", context="cue")
    local = Faker(halves(LOCALES, split)[0][0])
    local.seed_instance(rng.randrange(1 << 30))
    for unicode_domain, puny in halves(_IDN_DOMAINS, split) * 3:
        user = local.user_name()
        for domain in (unicode_domain, puny):
            yield _sample(rng, split, f"{user}@{domain}", "EMAIL", _MAIL_CUES, "pii/email/idn")

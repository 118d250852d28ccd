"""Names of people and health data in chat, mail, window titles and notes.

Names: Faker's given names and surnames of Latin-script locales, the locales
split into two disjoint halves (`NAME_LOCALES`). The redactor's gazetteer is
built from the dev half only (deskcorder/privacy/_names_data.py, see
_gazetteer.py), so held-out names are from countries whose lists the
detector never saw: what it catches there it catches by overlap between
countries and by context (greetings, titles, "said", signatures).

Health: conditions, treatments and medications in English, German, French
and Spanish, from a list written for the corpus, apart from the detector's
lexicon; the held-out half holds inflections and wordings the lexicon was
not written from.

Unlisted names (dev only): given name and surname both outside the
gazetteer, from Faker locales in neither half (`UNLISTED_LOCALES`: Icelandic,
Azerbaijani, Zulu, Yoruba, Igbo, Swahili, Uzbek, Irish, Kenyan, Swiss), so
the dev split also measures what the held-out split is about: names the
list does not hold, where only context can find them. Their templates
(`_UNLISTED_TEMPLATES`) are dev templates too, with the cue-less contexts of
desk work: a meeting or chat app's window title, "spoke with", "joined",
"owner:".

Names in scripts without capital letters (Korean, Thai, Japanese...) are not
generated: the detector does not find them (documented in the privacy package).
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from faker import Faker

from . import Sample, halves, place

NAME_LOCALES: tuple[str, ...] = (
    "en_US", "de_DE", "fr_FR", "es_ES", "it_IT", "pl_PL", "nl_NL", "pt_BR", "sv_SE", "no_NO", "da_DK", "fi_FI",
    "en_GB", "en_IN", "tr_TR", "cs_CZ", "ro_RO", "hu_HU", "pt_PT", "de_AT", "es_MX", "en_IE", "sk_SK", "hr_HR",
    "sl_SI", "lt_LT", "lv_LV", "et_EE", "id_ID", "fr_CA", "nl_BE",
)
# {F}: given name, {L}: surname, {N}: full name. Each becomes one NAME span.
_NAME_TEMPLATES = {
    "dev": (
        ("chat", "Hi {F}, can you review my PR?"), ("chat", "{N} said the build is green"),
        ("title", "Meeting with {N} - Calendar"), ("chat", "thanks {F}!"), ("mail", "cc {N}"),
        ("chat", "Dr. {L} will call you back"), ("mail", "Best,\n{N}\nSenior Engineer"),
        ("chat", "ask {F} about the invoice"), ("title", "Chat with {N} | Microsoft Teams"),
        ("mail", "Dear Mr. {L},"), ("chat", "@{F} any news?"), ("notes", "1:1 with {N} - notes.txt"),
    ),
    "heldout": (
        ("chat", "Hello {F}, quick question"), ("chat", "{F} mentioned the outage"),
        ("mail", "Kind regards,\n{N}"), ("chat", "Mrs {L} is out today"), ("chat", "talked to {N} yesterday"),
        ("chat", "{N} (Sales) joined the call"), ("mail", "Dear {N},"), ("title", "{N} - Zoom Meeting"),
        ("mail", "Hallo Frau {L}, vielen Dank"), ("chat", "Bonjour {F}, ça va ?"),
        ("notes", "interview: {N}, 2nd round"), ("chat", "ping {F} when it's merged"),
    ),
}
UNLISTED_LOCALES: tuple[str, ...] = ("is_IS", "az_AZ", "zu_ZA", "yo_NG", "ig_NG", "sw", "uz_UZ", "ga_IE", "en_KE",
                                     "de_CH")
_UNLISTED_TEMPLATES = _NAME_TEMPLATES["dev"] + (
    ("title", "{N} | Slack"), ("title", "Call with {N} - Google Meet"), ("title", "{N} - WhatsApp"),
    ("title", "{N} (Guest) - Webex"), ("chat", "spoke with {N} this morning"), ("chat", "{N} joined the channel"),
    ("chat", "{N} approved the PR"), ("chat", "{F} will send the slides"), ("chat", "met {N} at the conference"),
    ("notes", "owner: {N}"), ("notes", "candidate: {N} (backend)"), ("notes", "reviewer: {N}"),
)
_HEALTH_TERMS = {
    "dev": (
        "depression", "type 2 diabetes", "asthma", "epilepsy", "breast cancer", "HIV", "bipolar disorder",
        "anxiety disorder", "ADHD", "migraines", "multiple sclerosis", "Parkinson's disease", "schizophrenia",
        "hepatitis C", "Diabetes", "Depressionen", "diabète", "depresión", "sertraline", "metformin",
        "insulin", "chemotherapy", "Krebs", "miscarriage", "migraine attacks", "diabetes symptoms",
        "depressive episodes",
    ),
    "heldout": (
        "clinical depression", "diabetes", "asthma attacks", "epileptic seizures", "prostate cancer", "HIV positive",
        "PTSD", "anorexia", "panic attacks", "lupus", "Crohn's disease", "dementia", "leukemia", "fluoxetine",
        "Ritalin", "antidepressants", "Brustkrebs", "Angststörung", "cancer du sein", "ansiedad", "Zuckerkrankheit",
        "dépression", "lithium", "abortion",
    ),
}
_HEALTH_TEMPLATES = {
    "dev": (
        "Dr. {L} diagnosed my {H}", "I can't come in, my {H} is bad again", "she was treated for {H} last year",
        "pharmacy: pick up {H} refill", "sick note: {H}", "Mein Arzt sagt, es ist {H}",
    ),
    "heldout": (
        "my doctor thinks it's {H}", "he's been off work with {H}", "appointment re {H} on Tuesday",
        "Dr. {L} prescribed {H}", "they found {H} in the scan", "j'ai rendez-vous pour {H}",
    ),
}


def _fakers(rng: random.Random, split: str) -> list[Faker]:
    out = []
    for locale in halves(NAME_LOCALES, split):
        fake = Faker(locale)
        fake.seed_instance(rng.randrange(1 << 30))
        out.append(fake)
    return out


def _fill(template: str, values: dict[str, tuple[str, str]], *, category: str, context: str) -> Sample:
    """``{F}``/``{L}``/``{N}``/``{H}`` slots to `place` values (each a ``(text, kind)``)."""
    order, out = [], template
    i = 0
    while i < len(out):
        if out[i] == "{" and out[i + 2:i + 3] == "}" and out[i + 1] in values:
            order.append(values[out[i + 1]])
            out = out[:i] + "{}" + out[i + 3:]
            i += 2
        else:
            i += 1
    return place(out, order, category=category, context=context)


def generate(rng: random.Random, *, split: str) -> Iterator[Sample]:
    fakers = _fakers(rng, split)
    for _ in range(12):
        for fake in fakers:
            first, last = fake.first_name(), fake.last_name()
            context, template = rng.choice(_NAME_TEMPLATES[split])
            values = {"F": (first, "NAME"), "L": (last, "NAME"), "N": (f"{first} {last}", "NAME")}
            yield _fill(template, values, category=f"pii/name/{context}", context=context)
    if split == "dev":
        yield from _unlisted(rng)
    for term in _HEALTH_TERMS[split]:
        for _ in range(3):
            fake = rng.choice(fakers)
            template = rng.choice(_HEALTH_TEMPLATES[split])
            values = {"L": (fake.last_name(), "NAME"), "H": (term, "HEALTH")}
            yield _fill(template, values, category="pii/health", context="chat")


def _unlisted(rng: random.Random) -> Iterator[Sample]:
    """Names the detector's list does not hold, in dev templates (see the module docstring)."""
    from deskcorder.privacy._names_data import GIVEN_NAMES, SURNAMES

    for locale in UNLISTED_LOCALES:
        fake = Faker(locale)
        fake.seed_instance(rng.randrange(1 << 30))
        made = 0
        for _ in range(400):
            first, last = fake.first_name(), fake.last_name()
            if made == 12:
                break
            if " " in first or first in GIVEN_NAMES or last in SURNAMES or last in GIVEN_NAMES:
                continue
            made += 1
            context, template = rng.choice(_UNLISTED_TEMPLATES)
            values = {"F": (first, "NAME"), "L": (last, "NAME"), "N": (f"{first} {last}", "NAME")}
            yield _fill(template, values, category=f"pii/name/unlisted-{context}", context=context)

"""Health data in typed text: conditions, treatments and medications, from a lexicon in four languages.

A term is redacted wherever it appears, with the words that make it
specific (``type 2 diabetes``, ``breast cancer``, ``panic attacks``,
``HIV positive``): in a dataset of desk work a diagnosis is personal data
whoever typed it. English, German, French and Spanish; brand and generic
names of the medications people name most (antidepressants, stimulants,
insulin...).

A term takes the word after it that says how it shows (``attacks``,
``symptoms``, ``episodes``, ``flare-ups``, ``positive``): ``migraine
attacks`` is one span, not ``migraine`` and a leftover word.

The same words in their other senses are left alone: after a word of
weather or economics (``the Great Depression``, ``economic depression``,
``tropical depression``) and before a word that makes them a cause or an
institution rather than someone's condition (``cancer research``,
``Alzheimer's Society``, ``Breast Cancer Awareness Month``, ``diabetes
foundation``).

What it misses: conditions outside the lexicon, misspellings, other
languages. What it still takes that is not personal: the other senses it
has no word for (``the depression in the road``). Acronyms are matched in
capitals only (``AIDS``, ``ADHD``; ``aids`` and ``add`` are words).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = ["HEALTH_TERMS", "find_health_terms"]

# Terms (regular expressions, matched case-insensitively as whole words).
HEALTH_TERMS: tuple[str, ...] = (
    # mental health
    r"depressions?", r"depressive (?:episodes?|disorders?)", r"clinical(?:ly)? depress\w*", r"postpartum depression",
    r"anxiety (?:disorder|attacks?)", r"panic (?:attacks?|disorder)", r"bipolar(?: disorder)?", r"schizophreni\w*",
    r"eating disorder", r"anorexi\w*", r"bulimi\w*", r"autis\w+", r"burn-?out", r"insomnia",
    r"suicidal\w*", r"dementia", r"alzheimer'?s(?: disease)?", r"parkinson'?s(?: disease)?",
    r"addiction", r"alcoholism", r"overdosed?",
    # physical conditions
    r"(?:type [12] |gestational )?diabet\w*", r"asthma\w*", r"epilep\w+", r"(?:epileptic )?seizures?",
    r"migraines?", r"multiple sclerosis", r"(?:breast|lung|prostate|skin|colon|bowel|pancreatic|ovarian|"
    r"cervical|blood|testicular|bone) cancer", r"cancer", r"tumou?rs?", r"leuk(?:a)?emia", r"lymphoma",
    r"melanoma", r"chemo(?:therapy)?", r"radiotherapy", r"hepatitis(?: [abc])?", r"tuberculosis", r"pneumonia",
    r"lupus", r"crohn'?s(?: disease)?", r"colitis", r"arthritis", r"heart attack", r"cardiac arrest",
    r"pregnan\w+", r"miscarriages?", r"abortions?", r"infertil\w+", r"chlamydia", r"herpes", r"syphilis",
    r"gonorrh\w+", r"hiv(?:[ -]positive)?", r"covid(?:-19)?", r"long covid",
    # medications
    r"insulin", r"metformin", r"sertraline", r"fluoxetine", r"citalopram", r"escitalopram", r"paroxetine",
    r"venlafaxine", r"bupropion", r"lithium(?![- ]?ion| batter)", r"lamotrigine", r"quetiapine", r"olanzapine", r"risperidone",
    r"aripiprazole", r"methylphenidate", r"ritalin", r"adderall", r"xanax", r"alprazolam", r"diazepam",
    r"valium", r"lorazepam", r"zoloft", r"prozac", r"lexapro", r"wellbutrin", r"methotrexate", r"tamoxifen",
    r"antidepressants?", r"antipsychotics?", r"oxycodone", r"morphine", r"prednisone", r"levothyroxine",
    r"warfarin", r"ozempic", r"semaglutide", r"truvada",
    # German
    r"depressionen", r"(?:brust|lungen|prostata|haut|darm)?krebs\w*", r"angststörung\w*", r"panikattacke\w*",
    r"schizophrenie", r"epilepsie", r"schwangerschaft\w*", r"fehlgeburt\w*", r"demenz", r"migräne",
    r"zuckerkrank\w*", r"magersucht", r"diabetiker\w*",
    # French
    r"dépression\w*", r"diabète", r"cancer du (?:sein|poumon|côlon)", r"trouble bipolaire", r"épilepsie",
    r"grossesse", r"fausse couche", r"schizophrénie", r"démence", r"asthme", r"anxiété",
    # Spanish
    r"depresión", r"cáncer(?: de (?:mama|pulmón|próstata))?", r"ansiedad", r"trastorno bipolar", r"epilepsia",
    r"embarazo", r"esquizofrenia", r"demencia", r"asma",
)
_ACRONYMS = ("HIV", "AIDS", "ADHD", "PTSD", "OCD", "STD", "STI", "IVF", "COPD", "HPV", "PrEP")

# How a condition shows, taken with the term: "migraine attacks", "HIV positive", "asthma symptoms".
_SHOWS = r"(?:[ -](?:positive|attacks?|symptoms?|episodes?|flare-?ups?|relapses?))?"
_TERMS_RE = re.compile(
    r"(?i)(?<![\w-])(?:" + "|".join(sorted(HEALTH_TERMS, key=len, reverse=True)) + r")" + _SHOWS + r"(?![\w-])"
)
_ACRONYM_RE = re.compile(r"(?<![\w-])(?:" + "|".join(_ACRONYMS) + r")" + _SHOWS + r"(?![\w-])")
# Other senses: weather and economics before "depression"; causes and institutions after any term.
_OTHER_SENSE_BEFORE_RE = re.compile(r"(?i)\b(?:great|economic|financial|tropical|atmospheric|post-war)\s+$")
_OTHER_SENSE_AFTER_RE = re.compile(
    r"(?i)\s+(?:research(?:ers?)?|awareness|foundation|society|charity|charities|fund(?:raiser|raising)?|institute"
    r"|cent(?:er|re)|council|association|trust|alliance|month|week|day|walk|run|screening programme|ribbon)\b"
)
_LEADING_OPTIONAL_RE = re.compile(r"^\(\?:[^()]*\)\?")
_PUNCTUATION = "\"'()[]{}<>*_.,;:!?«»“”"


def _triggers(term: str) -> set[str]:
    """The first letters (up to 4) of the word every match of ``term`` starts with (one per alternative)."""
    core = _LEADING_OPTIONAL_RE.sub("", term)
    group = re.match(r"^\(\?:([^()]*)\)", core)
    starts = group.group(1).split("|") if group else [core]
    optional = re.match(r"^\(\?:([^()]*)\)\?", term)
    if optional:  # (?:brust|lungen)?krebs: Brustkrebs starts with "brus"
        starts += optional.group(1).split("|")
    found = set()
    for start in starts:
        letters = re.match(r"[^\W\d_]+", start)
        if letters is None:
            raise ValueError(f"health term {term!r} must start with letters (after an optional group)")
        found.add(letters.group()[:4].lower())
    return found


# One set lookup per word of the text decides whether the big expression runs at all: most typed
# runs name no condition, and the alternation of a hundred-odd terms costs ~30 us a line.
_TRIGGERS = frozenset(t for term in HEALTH_TERMS for t in _triggers(term))


def find_health_terms(text: str) -> Iterator[tuple[int, int]]:
    if any(a in text for a in _ACRONYMS):
        for m in _ACRONYM_RE.finditer(text):
            yield m.span()
    for word in text.lower().split():
        word = word.lstrip(_PUNCTUATION)
        if word[:4] in _TRIGGERS or word.rstrip(_PUNCTUATION)[:4] in _TRIGGERS:
            break
    else:
        return
    for m in _TERMS_RE.finditer(text):
        if _OTHER_SENSE_AFTER_RE.match(text, m.end()) or (
                _OTHER_SENSE_BEFORE_RE.search(text, max(0, m.start() - 16), m.start())
                and m.group().lower().startswith("depression")):
            continue
        yield m.span()

"""Typed contexts a value is placed into: one ``{}`` slot each, split into disjoint dev/held-out halves.

Families are what people type at a desk: chat and mail prose, shell lines,
config and code, SQL, form fields, window titles. `contexts(split)` gives a
generator the templates of one split only (`halves` of every family), so the
held-out score is measured on wordings the detectors were never tuned on.
"""

from __future__ import annotations

import random

from . import halves

__all__ = ["FAMILIES", "contexts", "wrap"]

FAMILIES: dict[str, tuple[str, ...]] = {
    "chat": (
        "hey, it's {} if you need it",
        "sure, here you go: {}",
        "can you check {} for me?",
        "ok so {} is the one",
        "pls use {} from now on",
        "fyi {} (don't share)",
        "{} - that's what they gave me",
        "I wrote it down: {}. let me know",
        "lol no, it was {} all along",
        "meeting notes: follow up re {} tomorrow",
        "ping me when you have {}",
        "got it -> {}",
    ),
    "mail": (
        "Hello,\n\nplease find the details below:\n{}\n\nBest regards",
        "As discussed on the phone, {} is correct.",
        "Could you update our records with {}? Thank you.",
        "Bonjour, voici l'information demandée : {}",
        "Hallo, anbei wie besprochen: {}. Viele Grüße",
        "Hola, te paso el dato: {} saludos",
        "Re: your request\n> {}\nConfirmed.",
        "Ciao, il dato è {} grazie mille",
    ),
    "shell": (
        "echo {} >> notes.txt",
        "grep -r '{}' ~/Documents",
        "./lookup --value {}",
        "printf '%s\\n' \"{}\"",
        "curl -s https://intranet.example/api/find?q={}",
        "python3 check.py {}",
        "vim +/'{}' records.csv",
        "awk -F, '$3==\"{}\"' customers.csv",
    ),
    "config": (
        "contact = \"{}\"",
        "value: {}",
        "\"field\": \"{}\",",
        "<entry>{}</entry>",
        "export CONTACT_INFO=\"{}\"",
        "owner={}",
    ),
    "sql": (
        "SELECT * FROM customers WHERE ref = '{}';",
        "INSERT INTO people (ref) VALUES ('{}');",
        "UPDATE accounts SET ref = '{}' WHERE id = 42;",
        "DELETE FROM leads WHERE ref='{}'",
    ),
    "form": (
        "{}",
        " {} ",
        "{}\t",
        "{};",
    ),
    "code": (
        "assert lookup(\"{}\") is not None",
        "const ref = '{}';",
        "// TODO remove {} before release",
        "# {}",
        "String ref = \"{}\";",
        "let r = \"{}\".to_string();",
    ),
}


def contexts(split: str) -> list[tuple[str, str]]:
    """``(family, template)`` pairs of one split."""
    return [(family, t) for family, templates in FAMILIES.items() for t in halves(templates, split)]


def wrap(rng: random.Random, split: str) -> tuple[str, str]:
    """One random ``(family, template)`` of the split."""
    return rng.choice(contexts(split))

"""Look-alikes that must come out of the redactor unchanged: digits, hex and capitals that are not personal.

Hashes and ids (git SHAs, UUIDs, sha256/sha512 digests, go.sum ``h1:`` and
npm ``sha512-`` base64 checksums), versions, placeholders and variable
references, order and tracking numbers, prices, dates, times, ports, line
numbers, hex colours, and prose that looks like names or health data to a
careless rule (products, places, code identifiers, words that are also
given names, "the Great Depression"). Values are random; the split changes
the templates they are typed into.
"""

from __future__ import annotations

import base64
import hashlib
import random
import string
import uuid
from collections.abc import Callable, Iterator

from . import Sample, place


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choices("0123456789abcdef", k=n))


def _digits(rng: random.Random, n: int) -> str:
    return str(rng.randint(1, 9)) + "".join(rng.choices(string.digits, k=n - 1))


def _b64(rng: random.Random, n: int) -> str:
    return base64.b64encode(hashlib.sha256(rng.randbytes(16)).digest() * (n // 32 + 1))[: (n * 4) // 3].decode()


# category -> value factory
VALUES: dict[str, Callable[[random.Random], str]] = {
    "lookalike/git-sha": lambda r: _hex(r, r.choice((7, 8, 12, 40))),
    "lookalike/uuid": lambda r: str(uuid.UUID(bytes=r.randbytes(16), version=4)),
    "lookalike/sha256": lambda r: _hex(r, 64),
    "lookalike/go-sum": lambda r: f"h1:{base64.b64encode(r.randbytes(32)).decode()}",
    "lookalike/npm-integrity": lambda r: f"sha512-{base64.b64encode(r.randbytes(64)).decode()}",
    "lookalike/version": lambda r: r.choice((f"{r.randint(0, 20)}.{r.randint(0, 40)}.{r.randint(0, 200)}",
                                             f"v{r.randint(1, 5)}.{r.randint(0, 12)}.{r.randint(0, 9)}-rc.{r.randint(1, 5)}",
                                             f"{r.randint(2019, 2026)}.{r.randint(1, 12):02d}.{r.randint(0, 9)}")),
    "lookalike/placeholder": lambda r: r.choice(("<EMAIL>", "{{user.name}}", "%(phone)s", "$1", "<your-token-here>",
                                                 "{email}", "XXXX-XXXX-XXXX-XXXX", "000-00-0000", "your.name@example")),
    "lookalike/var-ref": lambda r: r.choice(("${DB_HOST}", "${API_TOKEN}", "$HOME", "%APPDATA%", "${{ secrets.NPM_TOKEN }}",
                                             "${env:USERPROFILE}", "$(whoami)", "${user_email}")),
    "lookalike/order-number": lambda r: r.choice((f"#{_digits(r, 6)}", f"ORD-{r.randint(2019, 2026)}-{_digits(r, 6)}",
                                                  f"PO{_digits(r, 8)}", f"INV-{_digits(r, 5)}", f"order {_digits(r, 9)}")),
    "lookalike/tracking-number": lambda r: r.choice((f"1Z{''.join(r.choices(string.ascii_uppercase + string.digits, k=16))}",
                                                     f"JD{_digits(r, 18)}", f"{r.choice('RLCE')}{r.choice('ABCRN')}{_digits(r, 9)}DE")),
    "lookalike/price": lambda r: r.choice((f"${r.randint(1, 9999)}.{r.randint(0, 99):02d}", f"{r.randint(1, 999)},{r.randint(0, 99):02d} €",
                                           f"EUR {r.randint(1, 99999):,}", f"£{r.randint(1, 500)}")),
    "lookalike/date": lambda r: r.choice((f"{r.randint(2000, 2030)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
                                          f"{r.randint(1, 28):02d}.{r.randint(1, 12):02d}.{r.randint(1990, 2030)}",
                                          f"{r.randint(1, 12)}/{r.randint(1, 28)}/{r.randint(2000, 2030)}",
                                          f"{r.randint(2000, 2030)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T"
                                          f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}Z")),
    "lookalike/time": lambda r: f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}" + r.choice(("", f":{r.randint(0, 59):02d}", " CET")),
    "lookalike/port": lambda r: f"localhost:{r.choice((80, 443, 3000, 5432, 6379, 8080, 8443, 9092, 27017))}",
    "lookalike/line-number": lambda r: f"main.py:{r.randint(1, 4000)}:{r.randint(1, 120)}",
    "lookalike/hex-colour": lambda r: "#" + _hex(r, r.choice((3, 6, 8))),
    "lookalike/timestamp": lambda r: str(r.randint(1_500_000_000, 1_800_000_000)),
    "lookalike/size": lambda r: r.choice((f"{r.randint(1, 999)} MB", f"{r.randint(1, 64)}GiB", f"{r.randint(1000, 99999)} rows")),
    "lookalike/loopback-ip": lambda r: r.choice(("127.0.0.1", "0.0.0.0", "::1", "localhost")),
}
_TEMPLATES = {
    "dev": ("see {}", "commit {} fixed it", "value: {}", "echo {}", "\"ref\": \"{}\",", "it's {} now",
            "# {}", "grep {} out.log"),
    "heldout": ("checked {} again", "-> {}", "id={}", "printf '%s' {}", "<td>{}</td>", "ok {} works",
                "// {}", "note: {} (done)"),
}
# Prose that must survive: capitals, products, places and words that are also names.
PROSE = {
    "dev": (
        "Open Visual Studio Code and run the tests", "We shipped it to New York and San Francisco",
        "Microsoft Teams keeps crashing on login", "I will mark the ticket as done", "May I ask why?",
        "Grant access to the repo for the new team", "Bill the client in June", "The Great Depression chapter is due",
        "class UserProfileFactory extends BaseFactory", "getUserById(id) returns null", "Amazon Prime Video - Firefox",
        "Berlin office closes at five", "Google Chrome is out of date", "Apple Pencil arrived today",
        "Let's use Redux Toolkit instead", "Pull request #42 - Mozilla Firefox", "the virus scanner flagged it",
        "Jira board for Q3 is ready", "LibreOffice Calc froze again", "Santa Clara datacenter maintenance",
        "economic depression hit the region in 1930", "Breast Cancer Awareness Month starts Monday",
        "the diabetes foundation grant was approved", "donate to the Alzheimer's Society raffle",
    ),
    "heldout": (
        "Start Android Studio and sync Gradle", "The flight to Los Angeles via Frankfurt is late",
        "Slack Huddle started in #general", "we can chase the vendor tomorrow", "Hope that helps!",
        "Rose Garden tickets are sold out", "tropical depression over the Atlantic", "March release notes",
        "public class OrderService implements Service", "fetchCustomerOrders(customerId)", "Netflix - Google Chrome",
        "Paris meetup moved to Lyon", "Adobe Acrobat Reader update", "Kubernetes Dashboard - Firefox",
        "Install Docker Desktop first", "Summer Sale ends Sunday", "the cancer research fund report (PDF)",
        "Victoria Station exit B", "Notion Calendar sync failed", "Terraform Cloud run queued",
    ),
}


def generate(rng: random.Random, *, split: str) -> Iterator[Sample]:
    templates = _TEMPLATES[split]
    for category, make in VALUES.items():
        for _ in range(14):
            yield place(rng.choice(templates), [(make(rng), None)], category=category, context="mixed")
    for text in PROSE[split]:
        yield Sample(text, [], "lookalike/prose", "prose")

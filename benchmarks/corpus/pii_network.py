"""IPv4 and IPv6 addresses and MAC addresses as they appear in shell lines, logs and chat.

Addresses come from Faker (public and private IPv4, IPv6, MACs) and from the
`ipaddress` module's compressed and exploded spellings. MAC addresses are also
placed in text with no other digit around them (the evaluation's miss) and in
the dotted Cisco form. Loopback, unspecified and documentation-free version
strings are look-alikes (see lookalikes.py), not here.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterator

from faker import Faker

from . import Sample, place
from ._contexts import wrap

_TEMPLATES = {
    "dev": (
        "ssh -p 2222 {}", "ping -c 3 {}", "Failed password for root from {} port 53112 ssh2",
        "the server is at {} now", "nmap -sV {}", "host {} is down", "curl http://{}/health",
        "allow from {}", "[{}]:443 refused", "ip addr add {}/24 dev eth0",
    ),
    "heldout": (
        "rsync -av build/ {}:/srv", "traceroute {}", "Accepted publickey for git from {} port 40022",
        "can you whitelist {} for me", "sudo iptables -A INPUT -s {} -j DROP", "{} - - [02/Dec/2026:07:00:01] GET /",
        "mysql -h {} -u app", "my IP is {} apparently", "telnet {} 25", "upstream backend {{ server {}; }}",
    ),
}
_MAC_TEMPLATES = {
    "dev": ("wake up the box at {}", "ether {} brd ff:ff:ff:ff:ff:ff", "MAC: {}", "arp entry for {} is stale"),
    "heldout": ("my laptop's mac is {}", "hwaddr {}", "dhcp lease for {} renewed", "blocked device {} on the AP"),
}


def generate(rng: random.Random, *, split: str) -> Iterator[Sample]:
    fake = Faker()
    fake.seed_instance(rng.randrange(1 << 30))
    templates = _TEMPLATES[split]
    for _ in range(40):
        value = rng.choice((fake.ipv4_public(), fake.ipv4_private(), fake.ipv4()))
        yield place(rng.choice(templates), [(value, "IP")], category="pii/ip/v4", context="shell")
    for i in range(40):
        address = ipaddress.IPv6Address(fake.ipv6())
        value = address.exploded if i % 4 == 0 else address.compressed
        template = rng.choice(templates).replace("http://{}/", "http://[{}]/").replace(" {}:/srv", " [{}]:/srv")
        yield place(template, [(value, "IP")], category="pii/ip/v6", context="shell")
    for i in range(30):
        mac = fake.mac_address()
        if i % 3 == 1:
            mac = mac.upper().replace(":", "-")
        elif i % 3 == 2 and split == "heldout":
            digits = mac.replace(":", "")
            mac = ".".join(digits[k:k + 4] for k in range(0, 12, 4))  # Cisco
        yield place(rng.choice(_MAC_TEMPLATES[split]), [(mac, "MAC")], category="pii/mac", context="shell")
    for _ in range(10):
        family, template = wrap(rng, split)
        yield place(template, [(fake.ipv4_public(), "IP")], category="pii/ip/v4", context=family)

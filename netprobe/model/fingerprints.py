"""Blockpage and DNS-sinkhole fingerprints, and the pure matcher (issue 13).

Rules:
- A fingerprint is one pattern at one location of a measurement, OONI's blocking-fingerprints
  shape: `location` is `dns` (an A/AAAA answer address), `title` (the page's `<title>`), `body`
  (the stored body text), `body_sha256` (the hash of the body bytes read) or `header.<name>` (a
  response header the http record keeps, e.g. `header.location`, `header.server`);
  `pattern_type` is `full`, `contains` or `prefix`. `dns` and `body_sha256` are always `full`.
- Titles and header values are compared case-insensitively, with runs of whitespace collapsed;
  bodies exactly. A `dns` pattern is an IP address, compared in its normalised form.
- Body patterns see only what the record stored (`http_body_limit` bytes; nothing with
  `--no-bodies`); title, header, hash and dns patterns always work.
- `label` says what the page is in words a report can quote ("blockpage of VNPT", "DNS sinkhole
  of the Vietnamese government"); `source` says where the fingerprint comes from.
- A run's header stores the fingerprints it was measured with (`to_dict`), and the analysis
  reads them back from there (`from_header`), so a file's verdicts depend on the file alone.
- Pure: no I/O; the YAML reader is `netprobe.targets.fingerprints`.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DNS_LOCATION = "dns"
TITLE_LOCATION = "title"
BODY_LOCATION = "body"
BODY_SHA256_LOCATION = "body_sha256"
HEADER_PREFIX = "header."
LOCATIONS = (DNS_LOCATION, TITLE_LOCATION, BODY_LOCATION, BODY_SHA256_LOCATION)
FULL = "full"
CONTAINS = "contains"
PREFIX = "prefix"
PATTERN_TYPES = (FULL, CONTAINS, PREFIX)
FIELDS = ("id", "label", "location", "pattern_type", "pattern", "source", "country")


@dataclass(frozen=True, slots=True)
class Fingerprint:
    id: str
    label: str
    location: str
    pattern_type: str
    pattern: str
    source: str = ""
    country: str | None = None

    @property
    def is_dns(self) -> bool:
        return self.location == DNS_LOCATION

    def describe(self) -> str:
        """`blockpage of VNPT (fingerprint vn.vnpt_blockpage)`: how evidence names it."""
        return f"{self.label} (fingerprint {self.id})"

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FIELDS}


def location_problem(location: str) -> str | None:
    """Why `location` is not a valid location, else None."""
    if location in LOCATIONS:
        return None
    if location.startswith(HEADER_PREFIX) and len(location) > len(HEADER_PREFIX):
        return None
    return f"expected one of {', '.join(LOCATIONS)} or header.<name>, got {location!r}"


def normalise_pattern(location: str, pattern_type: str, pattern: str) -> str:
    """The pattern as it is compared; ValueError with a message if it cannot be one."""
    if location in (DNS_LOCATION, BODY_SHA256_LOCATION) and pattern_type != FULL:
        raise ValueError(f"a {location} fingerprint matches in full only (pattern_type: full)")
    if location == DNS_LOCATION:
        try:
            return str(ipaddress.ip_address(pattern.strip()))
        except ValueError:
            raise ValueError(f"expected an IP address, got {pattern!r}") from None
    if location == BODY_SHA256_LOCATION:
        digest = pattern.strip().lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"expected a SHA-256 in hex (64 digits), got {pattern!r}")
        return digest
    if location == BODY_LOCATION:
        return pattern
    return _folded(pattern)


def _folded(text: str) -> str:
    return " ".join(text.split()).casefold()


def _matches(fingerprint: Fingerprint, value: str) -> bool:
    pattern = fingerprint.pattern
    if fingerprint.pattern_type == FULL:
        return value == pattern
    if fingerprint.pattern_type == PREFIX:
        return value.startswith(pattern)
    return pattern in value


def from_header(header: Mapping[str, Any]) -> tuple[Fingerprint, ...]:
    """The fingerprints a run's header stores; malformed entries are left out (never raise)."""
    found: list[Fingerprint] = []
    entries = header.get("fingerprints")
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        values: dict[str, Any] = {name: entry.get(name) for name in FIELDS}
        required = ("id", "label", "location", "pattern_type", "pattern")
        if not all(isinstance(values[name], str) and values[name] for name in required):
            continue
        if location_problem(values["location"]) or values["pattern_type"] not in PATTERN_TYPES:
            continue
        try:
            pattern = normalise_pattern(
                values["location"], values["pattern_type"], values["pattern"]
            )
        except ValueError:
            continue
        found.append(
            Fingerprint(
                id=values["id"],
                label=values["label"],
                location=values["location"],
                pattern_type=values["pattern_type"],
                pattern=pattern,
                source=values["source"] if isinstance(values["source"], str) else "",
                country=values["country"] if isinstance(values["country"], str) else None,
            )
        )
    return tuple(found)


def merged(*sets: Iterable[Fingerprint]) -> list[Fingerprint]:
    """One list from several sets in order; a later fingerprint replaces one with its id."""
    by_id: dict[str, Fingerprint] = {}
    for fingerprints in sets:
        for fingerprint in fingerprints:
            by_id.pop(fingerprint.id, None)
            by_id[fingerprint.id] = fingerprint
    return list(by_id.values())


def match_address(fingerprints: Sequence[Fingerprint], ip: str) -> Fingerprint | None:
    """The first `dns` fingerprint that `ip` (an answer address) matches, else None."""
    address = _canonical_address(ip)
    if address is None:
        return None
    return next((f for f in fingerprints if f.is_dns and f.pattern == address), None)


@functools.lru_cache(maxsize=1 << 14)
def _canonical_address(ip: str) -> str | None:
    # Cached: every DNS answer of every run is matched (a timeline: the same few addresses).
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return None


def match_http(
    fingerprints: Sequence[Fingerprint], record: Mapping[str, Any]
) -> Fingerprint | None:
    """The first http fingerprint an `http` record's answer matches, else None."""
    if record.get("status") is None:
        return None
    headers = record.get("headers")
    headers = headers if isinstance(headers, dict) else {}
    for fingerprint in fingerprints:
        location = fingerprint.location
        if location == DNS_LOCATION:
            continue
        values: list[str]
        if location == TITLE_LOCATION:
            title = record.get("title")
            values = [_folded(title)] if isinstance(title, str) else []
        elif location == BODY_LOCATION:
            body = record.get("body")
            values = [body] if isinstance(body, str) else []
        elif location == BODY_SHA256_LOCATION:
            digest = record.get("body_sha256")
            values = [digest.lower()] if isinstance(digest, str) else []
        else:
            value = headers.get(location[len(HEADER_PREFIX) :].lower())
            items = value if isinstance(value, list) else [value]
            values = [_folded(item) for item in items if isinstance(item, str)]
        if any(_matches(fingerprint, value) for value in values):
            return fingerprint
    return None

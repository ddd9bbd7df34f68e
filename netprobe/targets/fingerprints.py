"""Fingerprints in YAML: a target list's `fingerprints:` key and the bundled file (issue 13).

Rules:
- The same schema in both places: a list of mappings with `id`, `label`, `location`,
  `pattern` (required), `pattern_type` (default `full`), `source`, `country` (optional); the
  meaning of each field is `netprobe.model.fingerprints`'. Unknown keys, duplicate ids and bad
  values are `TargetError`s naming file, line and field (`fingerprints[2].pattern: ...`).
- The bundled file is `netprobe/data/fingerprints.yaml` (package data): `{fingerprints: [...]}`.
  `bundled_fingerprints()` reads it once per process (the only I/O here, like
  `lists.load_targets`); everything else is pure.
- A run uses the bundled fingerprints and then every list's own; a list's fingerprint with a
  bundled id replaces the bundled one (`run_fingerprints`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from yaml.nodes import Node

from netprobe.model.fingerprints import (
    FIELDS,
    FULL,
    PATTERN_TYPES,
    Fingerprint,
    location_problem,
    merged,
    normalise_pattern,
)
from netprobe.yamlfile import NodeReader, YamlFileError

BUNDLED_NAME = "fingerprints.yaml"
FINGERPRINT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")


class FingerprintError(YamlFileError):
    """A bad fingerprint file (in a target list, the list reader's `TargetError` is raised)."""


class _FileReader(NodeReader):
    error_class = FingerprintError


def parse_fingerprint_list(
    reader: NodeReader, node: Node, path: str = "fingerprints"
) -> list[Fingerprint]:
    """The fingerprints of a YAML list node; errors are `reader.error_class`."""
    found: list[Fingerprint] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(reader.sequence(node, path, "a list of fingerprints")):
        where = f"{path}[{index}]"
        fields = reader.mapping(item, where, FIELDS)
        for required in ("id", "label", "location", "pattern"):
            if required not in fields:
                raise reader.error(item, f"{where}.{required}", "missing")
        ident = reader.text(fields["id"], f"{where}.id", "an id")
        if not FINGERPRINT_ID.match(ident):
            raise reader.error(
                fields["id"], f"{where}.id", f"expected letters, digits and . _ : -, got {ident!r}"
            )
        if ident in seen:
            raise reader.error(
                fields["id"], f"{where}.id", f"duplicate id {ident!r} (first at line {seen[ident]})"
            )
        seen[ident] = fields["id"].start_mark.line + 1
        location = reader.text(fields["location"], f"{where}.location", "a location")
        problem = location_problem(location)
        if problem:
            raise reader.error(fields["location"], f"{where}.location", problem)
        pattern_type = FULL
        if "pattern_type" in fields:
            pattern_type = reader.text(fields["pattern_type"], f"{where}.pattern_type")
            if pattern_type not in PATTERN_TYPES:
                raise reader.error(
                    fields["pattern_type"],
                    f"{where}.pattern_type",
                    f"expected one of {', '.join(PATTERN_TYPES)}, got {pattern_type!r}",
                )
        raw = reader.text(fields["pattern"], f"{where}.pattern", "a pattern")
        try:
            pattern = normalise_pattern(location, pattern_type, raw)
        except ValueError as exc:
            raise reader.error(fields["pattern"], f"{where}.pattern", str(exc)) from None
        found.append(
            Fingerprint(
                id=ident,
                label=reader.text(fields["label"], f"{where}.label", "a label"),
                location=location,
                pattern_type=pattern_type,
                pattern=pattern,
                source=reader.text(fields["source"], f"{where}.source")
                if "source" in fields
                else "",
                country=reader.text(fields["country"], f"{where}.country").upper()
                if "country" in fields
                else None,
            )
        )
    return found


def parse_fingerprint_file(text: str, filename: str) -> list[Fingerprint]:
    """A fingerprint file: a mapping with one key, `fingerprints`."""
    reader = _FileReader(text, filename)
    root = reader.root()
    if root is None:
        raise FingerprintError(filename, None, None, "empty file; expected `fingerprints:`")
    top = reader.mapping(root, "", ("fingerprints",))
    if "fingerprints" not in top:
        raise reader.error(root, "fingerprints", "missing")
    return parse_fingerprint_list(reader, top["fingerprints"])


@functools.cache
def bundled_fingerprints() -> tuple[Fingerprint, ...]:
    """The bundled fingerprints (package data `netprobe/data/fingerprints.yaml`)."""
    from importlib.resources import files

    resource = files("netprobe").joinpath("data", BUNDLED_NAME)
    return tuple(parse_fingerprint_file(resource.read_text(encoding="utf-8"), BUNDLED_NAME))


def run_fingerprints(lists: Iterable[Iterable[Fingerprint]]) -> list[Fingerprint]:
    """What a run matches against: the bundled set, then each list's own (see the rules)."""
    return merged(bundled_fingerprints(), *lists)

"""What `verifier.Verifier` reports: its events and the final `Verification` of a file.

Rules:
- Plain data, no behaviour; the meaning of each event and status is in `verifier.py`.
- `raw` is a line's bytes as written, without its LF (every complete line ends in exactly one).
- `Verification` is what `netprobe verify --format json` prints (minus `covered_sha512`): its
  fields only ever gain members.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Verification:
    path: Path
    status: str
    message: str
    lines_total: int = 0
    lines_covered: int = 0
    records_covered: int = 0
    records_uncovered: int = 0
    bad_line: int | None = None
    signer_fingerprint: str | None = None
    trusted: bool | None = None  # None: no allowed_signers given
    principal: str | None = None
    checkpoints: int = 0
    covered_bytes: int = 0
    covered_sha512: str | None = None  # lets readers detect a file changed after verifying

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["path"] = str(self.path)
        return data


@dataclass(slots=True)
class Header:
    line: int
    raw: bytes
    record: dict[str, Any]


@dataclass(slots=True)
class Record:
    line: int
    raw: bytes
    record: dict[str, Any]


@dataclass(slots=True)
class Checkpoint:
    seq: int
    reason: str
    line: int  # the signature line; lines 1..line are now covered
    covered_bytes: int
    covered_sha512: str
    final: bool  # a final checkpoint after the summary: nothing may follow
    # With Verifier(collect=True): the header, measurement and summary records it newly covers.
    records: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class Torn:
    line: int
    raw: bytes
    counted: bool  # counted in records_uncovered (a measurement, or cannot tell)


@dataclass(slots=True)
class Invalid:
    line: int | None  # None: the file as a whole (empty)
    reason: str


@dataclass(slots=True)
class Done:
    verification: Verification


Event = Header | Record | Checkpoint | Torn | Invalid | Done

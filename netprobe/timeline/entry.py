"""The stored form of one `RunSummary` in the summary cache (`timeline.cache`): bytes and back.

Rules:
- One entry is self-contained (no other row is needed to read it) and decodes to exactly the
  summary that was encoded: the same values, the same key order of every dict.
- Laid out for warm timelines, which decode thousands of entries of the same network in a row:
  what repeats from run to run (the score keys, unscored targets, groups and group labels; and
  the methods, which change only when a block starts or ends) is kept in zlib-compressed JSON
  parts, and a part's bytes already decoded in this process are not decoded again (`_PARTS`: a
  pure function of the bytes, so reusing its result can never misread). What differs per run
  (start time, health, ids, the scores) is a fixed header and little-endian doubles.
- Decoded summaries share only immutable objects (key tuples, strings); every dict is a new one.
- `decode_summary` raises ValueError for anything that is not a whole entry of this layout; the
  cache treats that as a miss. The layout is versioned by `cache.FORMAT` (part of every key), so
  an entry of an older layout is never looked up, let alone misread.

Layout: `MAGIC`, the CRC-32 of all that follows it (`<I`: a flipped bit is a ValueError, as
zlib's checksum made it for the JSON entries before), then `<dBIII` (started_at, healthy, byte lengths of the ids, shared and methods
parts), the ids part (JSON `[probe_asn, vantage, run_id]`), the shared part (zlib JSON `{"keys":
[[target, layer], ...], "unscored": [...], "groups": {...}, "group_labels": {...}}`), the methods
part (zlib JSON `{target: method}`, empty when none), then one double per key.
"""

from __future__ import annotations

import json
import struct
import zlib

from netprobe.timeline.runs import RunSummary

MAGIC = b"NPT4"
_CHECK = struct.Struct("<I")
_HEAD = struct.Struct("<dBIII")
_BODY = len(MAGIC) + _CHECK.size  # where the checked bytes start
_START = _BODY + _HEAD.size
# Decoded shared and methods parts by their bytes; cleared when it grows past _PARTS_MAX (a
# history has a handful of target lists, and methods change with blocks, not with every run).
_PARTS: dict[bytes, object] = {}
_PARTS_MAX = 4096


def _packed(data: object) -> bytes:
    # Level 1: a third of level 6's time, and the parts are small anyway.
    return zlib.compress(json.dumps(data, separators=(",", ":")).encode(), 1)


def encode_summary(run: RunSummary) -> bytes:
    ids = json.dumps([run.probe_asn, run.vantage, run.run_id], separators=(",", ":")).encode()
    shared = _packed(
        {
            "keys": [list(key) for key in run.scores],
            "unscored": list(run.unscored),
            "groups": run.groups,
            "group_labels": run.group_labels,
        }
    )
    methods = _packed(run.methods) if run.methods else b""
    head = _HEAD.pack(run.started_at, bool(run.healthy), len(ids), len(shared), len(methods))
    scores = struct.pack(f"<{len(run.scores)}d", *run.scores.values())
    body = b"".join((head, ids, shared, methods, scores))
    return MAGIC + _CHECK.pack(zlib.crc32(body)) + body


def _shared(part: bytes) -> tuple:
    found = _PARTS.get(part)
    if found is None:
        data = json.loads(zlib.decompress(part))
        found = (
            tuple((str(target), str(layer)) for target, layer in data["keys"]),
            tuple(str(target) for target in data["unscored"]),
            {str(k): str(v) for k, v in data["groups"].items()},
            {str(k): str(v) for k, v in data["group_labels"].items()},
        )
        _remember(part, found)
    return found  # type: ignore[return-value]


def _methods(part: bytes) -> dict[str, str]:
    if not part:
        return {}
    found = _PARTS.get(part)
    if found is None:
        found = {str(k): str(v) for k, v in json.loads(zlib.decompress(part)).items()}
        _remember(part, found)
    return found  # type: ignore[return-value]


def _remember(part: bytes, decoded: object) -> None:
    if len(_PARTS) >= _PARTS_MAX:
        _PARTS.clear()
    _PARTS[part] = decoded


def decode_summary(blob: bytes, source: str = "") -> RunSummary:
    """The summary of an entry; `source`: the file it is given as read from (not stored).

    Raises ValueError (checksum, zlib.error, JSON errors, missing fields, wrong sizes) for a
    damaged entry."""
    try:
        if blob[: len(MAGIC)] != MAGIC:
            raise ValueError("not an entry of this layout")
        if _CHECK.unpack_from(blob, len(MAGIC))[0] != zlib.crc32(memoryview(blob)[_BODY:]):
            raise ValueError("checksum mismatch")
        started_at, healthy, ids_size, shared_size, methods_size = _HEAD.unpack_from(blob, _BODY)
        shared_at = _START + ids_size
        methods_at = shared_at + shared_size
        scores_at = methods_at + methods_size
        probe_asn, vantage, run_id = json.loads(blob[_START:shared_at])
        keys, unscored, groups, labels = _shared(blob[shared_at:methods_at])
        if len(blob) - scores_at != 8 * len(keys):
            raise ValueError("the scores do not match their keys")
        scores = struct.unpack_from(f"<{len(keys)}d", blob, scores_at)
        return RunSummary(
            started_at=started_at,
            probe_asn=str(probe_asn),
            vantage=str(vantage),
            run_id=str(run_id),
            healthy=bool(healthy),
            scores=dict(zip(keys, scores, strict=True)),
            methods=dict(_methods(blob[methods_at:scores_at])),
            unscored=unscored,
            groups=dict(groups),
            group_labels=dict(labels),
            source=source,
        )
    except (struct.error, zlib.error, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"damaged cache entry: {exc}") from None

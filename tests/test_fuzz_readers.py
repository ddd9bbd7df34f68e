"""Property tests: any bytes a reader is given end in a result or its documented error (issue 12).

Files start from real ones (a signed file from the writer, an unsigned one from
tests/recordfactory.py) and are mutated: bytes flipped, inserted or cut, lines dropped,
duplicated or swapped, record fields replaced by random JSON (deep nesting, NaN, wrong types).
Allowed outcomes per reader:
- `verify_file`: a `Verification`, or `ResultFileError`;
- `iter_records` / `load_result`: records, or `ResultFileError`;
- `load_run` + `analyse`: an analysis, or `RunRefused`;
- `summarise_file`: a summary, None or `Skipped` whose reason is not the last-resort handler's;
- `parse_targets` / `parse_config`: a value, or `TargetError` / `ConfigError`.
Bounded for CI: at most ~200 examples per test, no deadline.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netprobe.analysis import analyse
from netprobe.analysis.load import RunRefused, load_run
from netprobe.config import ConfigError, parse_config
from netprobe.evidence.keys import generate_key
from netprobe.evidence.reader import ResultFileError, iter_records, load_result, verify_file
from netprobe.evidence.writer import ResultWriter
from netprobe.targets.lists import TargetError, parse_targets
from netprobe.timeline.files import UNEXPECTED, ReadOptions, Skipped, summarise_file
from tests.recordfactory import domain_ok, header, healthy_controls, summary, write_result

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
RECORDS = [*healthy_controls(), *domain_ok("telegram.org", "203.0.113.10")]
WORK = Path(tempfile.mkdtemp(prefix="netprobe-fuzz-"))
atexit.register(shutil.rmtree, WORK, True)


def _signed() -> bytes:
    writer = ResultWriter(
        WORK, "signed", signer=generate_key(WORK / "key", "alice"), checkpoint_every=3
    )
    writer.write_header(header())
    for record in RECORDS:
        writer.write(record)
    return writer.close(summary(len(RECORDS))).read_bytes()


SIGNED = _signed()
UNSIGNED = write_result(WORK / "unsigned.jsonl", header(), RECORDS).read_bytes()
ALLOWED = WORK / "allowed_signers"
ALLOWED.write_text("alice " + " ".join((WORK / "key.pub").read_text().split()[:2]) + "\n")

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = draw(st.sampled_from([SIGNED, UNSIGNED]))
    lines = data.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(
            st.sampled_from(["flip", "insert", "cut", "drop", "dup", "swap", "field", "deep"])
        )
        index = draw(st.integers(0, len(lines) - 1)) if lines else 0
        if not lines:
            lines = [b"\n"]
        line = lines[index]
        if kind == "flip" and line:
            at = draw(st.integers(0, len(line) - 1))
            lines[index] = line[:at] + bytes([draw(st.integers(0, 255))]) + line[at + 1 :]
        elif kind == "insert":
            at = draw(st.integers(0, len(line)))
            lines[index] = line[:at] + draw(st.binary(max_size=8)) + line[at:]
        elif kind == "cut":
            lines[index] = line[: draw(st.integers(0, len(line)))]
        elif kind == "drop" and len(lines) > 1:
            del lines[index]
        elif kind == "dup":
            lines.insert(index, line)
        elif kind == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[index], lines[other] = lines[other], lines[index]
        elif kind in ("field", "deep"):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict) or not record:
                continue
            name = draw(st.sampled_from(sorted(record)))
            if kind == "deep":
                value = json.loads(_deep(draw(st.integers(90, 110))))
            else:
                value = draw(json_values)
            record[name] = value
            lines[index] = json.dumps(record, separators=(",", ":")).encode() + b"\n"
    return b"".join(lines)


def _put(data: bytes) -> Path:
    path = Path(tempfile.mkstemp(dir=WORK, prefix="20250526T010000Z_", suffix=".jsonl")[1])
    path.write_bytes(data)
    return path


@FUZZ
@given(mutated())
def test_verify_and_readers(data: bytes) -> None:
    path = _put(data)
    try:
        for allowed in (None, ALLOWED):
            result = verify_file(path, allowed_signers=allowed)
            assert result.status in ("COMPLETE", "PARTIAL", "UNSIGNED", "INVALID")
        for verify in (True, False):
            try:
                _verification, stream = iter_records(path, verify=verify)
                list(stream)
            except ResultFileError as exc:
                assert str(path) in str(exc)
    finally:
        path.unlink()


@FUZZ
@given(mutated())
def test_load_and_analyse(data: bytes) -> None:
    path = _put(data)
    try:
        for verify in (True, False):
            try:
                loaded = load_result(path, verify=verify)
            except ResultFileError as exc:
                assert str(path) in str(exc)
                continue
            try:
                run = load_run(loaded.header, [*loaded.records, loaded.summary or {}])
            except RunRefused:
                continue
            analyse(run.header, run.records).to_dict()
    finally:
        path.unlink()


@FUZZ
@given(mutated())
def test_summarise_file(data: bytes) -> None:
    path = _put(data)
    try:
        for verify in (True, False):
            result = summarise_file(path, ReadOptions(verify=verify))
            if isinstance(result, Skipped):
                assert not result.reason.startswith(UNEXPECTED), result.reason
    finally:
        path.unlink()


TARGETS = (Path(__file__).resolve().parent.parent / "targets").glob("*.yaml")
TARGET_TEXTS = [p.read_text() for p in sorted(TARGETS)][:3] or ["targets: []\n"]
CONFIG_TEXT = "timeout: 2.5\nconcurrency: 8\nrepeat: 1\n"


@st.composite
def mutated_text(draw: st.DrawFn, base: list[str]) -> str:
    text = draw(st.sampled_from(base))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "insert", "cut", "deep", "random"]))
        at = draw(st.integers(0, len(text)))
        if kind == "flip" and text:
            at = min(at, len(text) - 1)
            text = text[:at] + draw(st.characters()) + text[at + 1 :]
        elif kind == "insert":
            text = text[:at] + draw(st.text(max_size=10)) + text[at:]
        elif kind == "cut":
            text = text[:at]
        elif kind == "deep":
            levels = draw(st.integers(40, 600))
            text = (
                text[:at] + draw(st.sampled_from([_deep(levels), "- " * levels + "x"])) + text[at:]
            )
        else:
            text = draw(st.text(max_size=60))
    return text


@FUZZ
@given(mutated_text(TARGET_TEXTS))
def test_parse_targets(text: str) -> None:
    try:
        parse_targets(text, "fuzz.yaml")
    except TargetError as exc:
        assert str(exc).startswith("fuzz.yaml")


@FUZZ
@given(mutated_text([CONFIG_TEXT]))
def test_parse_config(text: str) -> None:
    try:
        parse_config(text, "config.yaml")
    except ConfigError as exc:
        assert str(exc).startswith("config.yaml")

"""Line decoding with orjson and without it gives the same Python objects, records and timeline.

`evidence.format.decode_json` uses orjson when it is installed and falls back to the stdlib for
lines orjson refuses or may read differently (numbers of 19+ digits); these tests run the same
lines, files and timeline through both paths (`_fast_loads` patched to None) and compare.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netprobe.evidence import format as fmt
from netprobe.evidence.reader import iter_records
from netprobe.timeline.builder import TimelineBuilder, TimelineOptions
from netprobe.timeline.files import ReadOptions, Skipped, expand_paths, read_runs

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("gen_history", ROOT / "bench" / "gen_history.py")
gen_history = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen_history)

EDGE_LINES = [
    b'{"type":"x","a":1}',
    b'{"type":"x","big":123456789012345678901234567890}',  # beyond 64 bits: an int, not a float
    b'{"type":"x","neg":-9223372036854775809}',
    b'{"type":"x","u64":18446744073709551615}',
    b'{"type":"x","long":1.2345678901234567890123}',
    b'{"type":"x","inf":1E400,"tiny":1e-400}',
    b'{"type":"x","nan":NaN,"i":Infinity,"m":-Infinity}',
    b'{"type":"x","s":"\\ud800"}',  # a lone surrogate
    b'{"type":"x","s":"\\u00e9\\u0000/\\/","e":"\xc3\xa9"}',
    b'{"type":"x","a":1,"a":2}',
    b'{"type":"x","f":-0.0,"z":-0,"e":1E2,"g":0.1e1,"h":5e-324}',
    b'  {"type":"x"}  ',
    b'{"type":"x"}x',
    b'{"type":"x","s":"a\tb"}',
    b'{"type":"x","s":"\xed\xa0\x80"}',
    b'\xef\xbb\xbf{"type":"x"}',
    b'{"type":"x","a":[1,]}',
    b'{"type":"x","a":01}',
    b"[1,2]",
    b'"text"',
    b"",
    b"[" * 200 + b"]" * 200,
    b'{"type":' + b"[" * 1100 + b"]" * 1100 + b"}",
]


def stdlib_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fmt, "_fast_loads", None)


def decoded(line: bytes) -> str:
    # repr tells 1 from 1.0 and True from 1, which == does not.
    try:
        return repr(fmt.decode_json(line))
    except RecursionError:
        return "RecursionError"
    except ValueError as exc:
        return f"ValueError {exc}"


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("history")
    gen_history.write_history(
        folder, hours=20, onset_hour=10, outage_hour=None, gap_hour=None, ranges=3, signed=20
    )
    return folder


def test_orjson_is_the_default_path():
    assert fmt._fast_loads is not None  # a default dependency (pyproject.toml)


def test_edge_lines_decode_the_same_with_and_without_orjson(monkeypatch):
    fast = [decoded(line) for line in EDGE_LINES]
    fast_records = [fmt.decode_line(line) for line in EDGE_LINES]
    stdlib_only(monkeypatch)
    assert fast == [decoded(line) for line in EDGE_LINES]
    assert repr(fast_records) == repr([fmt.decode_line(line) for line in EDGE_LINES])
    assert "123456789012345678901234567890" in fast[1]  # not turned into a float


def test_result_files_give_the_same_records_with_and_without_orjson(history, monkeypatch):
    files, _ = expand_paths([history])
    allowed = history / "allowed_signers"

    def records() -> list[str]:
        out = []
        for path in files:
            verification, found = iter_records(path, allowed_signers=allowed)
            out += [repr(record) for record in found]
            assert verification is not None and verification.status == fmt.COMPLETE
            _, unverified = iter_records(path, verify=False)
            out += [repr(record) for record in unverified]
        return out

    fast = records()
    stdlib_only(monkeypatch)
    assert fast == records()


def test_timeline_is_the_same_with_and_without_orjson(history, monkeypatch):
    files, _ = expand_paths([history])
    options = ReadOptions(allowed_signers=str(history / "allowed_signers"))

    def report() -> str:
        builder = TimelineBuilder(TimelineOptions())
        for result in read_runs(files, options, jobs=1):
            assert not isinstance(result, Skipped), result
            builder.add(result)
        return json.dumps(builder.build(), sort_keys=True)

    fast = report()
    stdlib_only(monkeypatch)
    assert fast == report()


_REGEX_RUN = re.compile(rb"\d{19}").search


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=30),
            st.text(alphabet="0123456789", min_size=15, max_size=24).map(str.encode),
            st.sampled_from([b"0", b"9", b"\xd9", b"\xb0", b"\x00", b"/", b":", "٣".encode()]),
        ),
        max_size=12,
    )
)
def test_long_digit_run_is_the_regex(parts):
    # The fast check that sends a line to the stdlib must find exactly what `\d{19}` finds
    # (ASCII digits only; bytes next to "0"-"9" in the code table are not digits).
    line = b"".join(parts)
    assert fmt.has_long_digit_run(line) == (_REGEX_RUN(line) is not None)


def test_long_digit_run_edges():
    assert fmt.has_long_digit_run(b'{"n":' + b"1" * 19 + b"}")
    assert not fmt.has_long_digit_run(b'{"n":' + b"1" * 18 + b"}")
    assert not fmt.has_long_digit_run(b"1" * 18 + b"." + b"1" * 18)

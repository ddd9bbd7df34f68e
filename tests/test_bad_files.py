"""One bad file breaks nothing (issue 12): every reader turns any content into a clear error.

Each kind of damage (deep nesting, a huge line, NUL bytes, invalid UTF-8, CRLF, NaN, a directory
or a FIFO where a file should be) is given to `verify`, `report`, `diff`, `timeline` (in its
process pool) and the target-list / config readers; each must name the file (and the line) and
say what is wrong, never print a traceback; `timeline` skips the file and reports the rest.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from netprobe.analysis.load import RunRefused, load_run
from netprobe.cli import app
from netprobe.config import ConfigError, parse_config
from netprobe.evidence.format import MAX_LINE_BYTES, MAX_NESTING
from netprobe.evidence.keys import generate_key
from netprobe.evidence.reader import INVALID, ResultFileError, load_result, verify_file
from netprobe.evidence.writer import ResultWriter
from netprobe.targets.lists import TargetError, parse_targets
from netprobe.timeline.files import ReadOptions, Skipped, summarise_file
from netprobe.yamlfile import MAX_NESTING as YAML_NESTING
from tests.recordfactory import domain_ok, header, healthy_controls, summary, write_result

runner = CliRunner()
DEEP = 100_000  # far past Python's recursion limit


def good_bytes(tmp_path: Path) -> bytes:
    path = write_result(
        tmp_path / "good.jsonl",
        header(),
        [*healthy_controls(), *domain_ok("telegram.org", "203.0.113.10")],
    )
    return path.read_bytes()


# name -> (damage to a good file's bytes, words the error must contain)
def _deep(data: bytes) -> bytes:
    return data + b'{"type":"dns","x":' + b"[" * DEEP + b"]" * DEEP + b"}\n"


def _deep_object(data: bytes) -> bytes:
    return data + b'{"type":"dns","x":' + b'{"a":' * DEEP + b"1" + b"}" * DEEP + b"}\n"


def _huge(data: bytes) -> bytes:
    return data + b'{"type":"dns","x":"' + b"a" * MAX_LINE_BYTES + b'"}\n'


def _nul(data: bytes) -> bytes:
    lines = data.splitlines(keepends=True)
    lines[3] = lines[3][:10] + b"\x00" + lines[3][10:]
    return b"".join(lines)


def _utf8(data: bytes) -> bytes:
    lines = data.splitlines(keepends=True)
    lines[3] = lines[3][:10] + b"\xff\xfe" + lines[3][10:]
    return b"".join(lines)


def _crlf(data: bytes) -> bytes:
    return data.replace(b"\n", b"\r\n")


def _nan(data: bytes) -> bytes:
    lines = data.splitlines(keepends=True)
    record = json.loads(lines[3])
    record["t0"] = float("nan")
    lines[3] = json.dumps(record).encode() + b"\n"
    return b"".join(lines)


DAMAGE = {
    "deep-array": (_deep, 11, "nested more than"),
    "deep-object": (_deep_object, 11, "nested more than"),
    "huge-line": (_huge, 11, "longer than"),
    "nul": (_nul, 4, "NUL"),
    "invalid-utf8": (_utf8, 4, "UTF-8"),
}


@pytest.mark.parametrize("name", list(DAMAGE))
def test_damaged_line_is_invalid_naming_line_and_problem(tmp_path: Path, name: str) -> None:
    damage, line, words = DAMAGE[name]
    path = tmp_path / "bad.jsonl"
    path.write_bytes(damage(good_bytes(tmp_path)))
    result = verify_file(path)
    assert result.status == INVALID
    assert result.bad_line == line
    assert f"line {line}" in result.message and words in result.message


@pytest.mark.parametrize("name", [*DAMAGE, "crlf", "nan"])
def test_unverified_readers_skip_damaged_lines_without_crashing(tmp_path: Path, name: str) -> None:
    damage = {**{k: v[0] for k, v in DAMAGE.items()}, "crlf": _crlf, "nan": _nan}[name]
    path = tmp_path / "20250526T010000Z_bad.jsonl"
    path.write_bytes(damage(good_bytes(tmp_path)))
    loaded = load_result(path, verify=False)  # must not raise
    if loaded.dropped:
        assert "line" in (loaded.notice or "")
    result = summarise_file(path, ReadOptions(verify=False))
    assert result is not None
    if isinstance(result, Skipped):
        assert not result.reason.startswith("unexpected"), result.reason


def test_crlf_file_is_invalid_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "crlf.jsonl"
    path.write_bytes(_crlf(good_bytes(tmp_path)))
    # The writer writes LF only; CR before the LF is still JSON whitespace, so an unsigned file
    # reads, and its status says it was never signed.
    assert verify_file(path).status in ("UNSIGNED", INVALID)


def test_directory_and_fifo_are_refused_at_once(tmp_path: Path) -> None:
    folder = tmp_path / "dir.jsonl"
    folder.mkdir()
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    for path, words in ((folder, "directory"), (fifo, "FIFO")):
        for read in (verify_file, lambda p: load_result(p, verify=False), load_result):
            with pytest.raises(ResultFileError, match=words) as info:
                read(path)  # a FIFO with no writer would block forever if opened plainly
            assert str(path) in str(info.value)
        skipped = summarise_file(path, ReadOptions())
        assert isinstance(skipped, Skipped) and words in skipped.reason


def write_folder(tmp_path: Path, count: int = 20) -> Path:
    folder = tmp_path / "results"
    folder.mkdir()
    recs = [*healthy_controls(), *domain_ok("telegram.org", "203.0.113.10")]
    for i in range(count):
        write_result(folder / f"202505{10 + i}T010000Z_good.jsonl", header(), recs)
    return folder


@pytest.mark.parametrize("name", list(DAMAGE))
def test_timeline_skips_a_bad_file_and_reports_the_rest(tmp_path: Path, name: str) -> None:
    folder = write_folder(tmp_path)
    bad = folder / "20250601T010000Z_bad.jsonl"
    damage, line, _words = DAMAGE[name]
    lines = damage(good_bytes(tmp_path)).splitlines(keepends=True)
    # The damaged line comes first here, so even --no-verify cannot use the file.
    bad.write_bytes(b"".join([lines.pop(line - 1), *lines]))
    result = runner.invoke(
        app, ["timeline", str(folder), "--no-verify", "--jobs", "2", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert "skipped" in result.stderr and str(bad) in result.stderr
    assert "not a netprobe result header" in result.stderr
    report = json.loads(result.stdout)
    assert report  # the 20 good files still make a timeline


def test_timeline_skips_a_fifo_in_a_folder(tmp_path: Path) -> None:
    folder = write_folder(tmp_path)
    os.mkfifo(folder / "20250601T010000Z_fifo.jsonl")
    result = runner.invoke(app, ["timeline", str(folder), "--no-verify", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert "FIFO" in result.stderr


def signed_file(directory: Path) -> Path:
    writer = ResultWriter(directory, "run", signer=generate_key(directory / "key", "alice"))
    writer.write_header(header())
    for record in [*healthy_controls(), *domain_ok("telegram.org", "203.0.113.10")]:
        writer.write(record)
    return writer.close(summary(7))


def test_verify_report_diff_name_the_file_and_line(tmp_path: Path) -> None:
    good = signed_file(tmp_path)
    assert verify_file(good).status == "COMPLETE"
    lines = good.read_bytes().splitlines(keepends=True)
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"".join(lines[:10]) + _deep(b"") + b"".join(lines[10:]))
    result = runner.invoke(app, ["verify", str(bad), "--format", "json"])
    assert result.exit_code == 5 and "Traceback" not in result.output
    item = json.loads(result.stdout)[0]
    assert item["status"] == INVALID and "line 11" in json.dumps(item)
    for args in (
        ["report", str(bad)],
        ["diff", str(good), str(bad)],
        ["diff", str(bad), str(good)],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
        assert str(bad) in result.stderr and "line 11" in result.stderr
    result = runner.invoke(app, ["report", "--no-verify", str(bad), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert "line 11" in result.stderr  # the skipped line is named


def test_report_refuses_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    result = runner.invoke(app, ["report", "--no-verify", str(fifo)])
    assert result.exit_code == 2 and "FIFO" in result.stderr


def deep_yaml(levels: int, flow: bool) -> str:
    if flow:
        return "targets: " + "[" * levels + "]" * levels + "\n"
    return "targets:\n" + "".join("  " * i + "-\n" for i in range(levels))


@pytest.mark.parametrize("flow", [True, False])
def test_deeply_nested_target_list_and_config_are_clear_errors(tmp_path: Path, flow: bool) -> None:
    text = deep_yaml(500, flow)
    with pytest.raises(TargetError, match=f"nested more than {YAML_NESTING} levels") as info:
        parse_targets(text, "deep.yaml")
    assert str(info.value).startswith("deep.yaml:")
    with pytest.raises(ConfigError, match="nested more than"):
        parse_config(text.replace("targets", "timeout"), "config.yaml")
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["targets", "check", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"{path}:" in result.stderr and "nested more than" in result.stderr


def test_yaml_nesting_limit_allows_ordinary_depth() -> None:
    with pytest.raises(TargetError) as info:  # 10 levels: refused for its shape, not its depth
        parse_targets(deep_yaml(10, True), "shallow.yaml")
    assert "nested" not in str(info.value)


@pytest.mark.parametrize(
    "text, words",
    [
        ("targets: [a\x00]\n", "invalid YAML"),
        ("name: x\r\ngroups: 3\r\n", "groups"),
        ("name: .nan\n", "name"),
        ("name: x\n" + "#" * 2_000_000 + "\n", "targets|groups"),
    ],
)
def test_odd_target_text_is_a_target_error(text: str, words: str) -> None:
    with pytest.raises(TargetError, match=words):
        parse_targets(text, "odd.yaml")


def test_nesting_limit_leaves_real_records_alone() -> None:
    assert MAX_NESTING >= 20  # our records nest about 4 levels


# Regressions found by tests/test_fuzz_readers.py.
def test_header_field_of_the_wrong_type_is_refused(tmp_path: Path) -> None:
    path = write_result(tmp_path / "run.jsonl", header(groups=[[1]]), list(healthy_controls()))
    with pytest.raises(RunRefused, match="'groups' must be a mapping"):
        load_run(load_result(path, verify=False).header, [])
    result = runner.invoke(app, ["report", "--no-verify", str(path)])
    assert result.exit_code == 2 and "groups" in result.stderr


def test_checkpoint_with_infinity_is_invalid(tmp_path: Path) -> None:
    lines = signed_file(tmp_path).read_bytes().splitlines(keepends=True)
    lines[1] = re.sub(rb'"bytes":\d+', b'"bytes":Infinity', lines[1])
    assert b"Infinity" in lines[1]
    path = tmp_path / "inf.jsonl"
    path.write_bytes(b"".join(lines))
    result = verify_file(path)
    assert result.status == INVALID and result.bad_line == 2


def test_unknown_yaml_tag_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="config.yaml:1: invalid YAML value"):
        parse_config("timeout: =\n", "config.yaml")

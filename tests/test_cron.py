"""Cron behaviour of `python -m netprobe run` with real processes and local listeners only.

Overlapping runs (lock, exit 75), a run killed mid-way (.partial stays readable, the next run is
not blocked), a config file plus flags, and --keep-days. The target list points at listeners on
127.0.0.1 that accept TCP but never answer TLS, so a run lasts about --timeout seconds.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netprobe.run.lock import EXIT_LOCKED

ROOT = Path(__file__).resolve().parent.parent
# Resolvers on a closed local port: nothing ever leaves the machine.
NOWHERE = "udp://127.0.0.1:9"


@pytest.fixture
def listeners():
    """Two silent TCP listeners (target, control) on 127.0.0.1; the kernel completes connects."""
    sockets = []
    for _ in range(2):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sockets.append(sock)
    yield [s.getsockname()[1] for s in sockets]
    for sock in sockets:
        sock.close()


@pytest.fixture
def target_list(tmp_path, listeners) -> Path:
    target_port, control_port = listeners
    path = tmp_path / "local.yaml"
    path.write_text(
        "name: local\n"
        "groups:\n"
        "  local:\n"
        "    label: silent local listener\n"
        "    endpoints:\n"
        f'      - {{address: "127.0.0.1:{target_port}", sni: slow.example}}\n'
        "controls:\n"
        f'  endpoints: ["127.0.0.1:{control_port}"]\n'
    )
    return path


def netprobe_run(*args: str, **popen) -> subprocess.Popen:
    env = {**os.environ, "NETPROBE_CONFIG": "", "XDG_CONFIG_HOME": "/nonexistent"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "netprobe",
            "run",
            "--resolver",
            NOWHERE,
            "--control-resolver",
            NOWHERE,
            *args,
        ],  # fmt: skip
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting for the run to start")
        time.sleep(0.05)


def lock_held(out: Path) -> bool:
    lock = out / ".netprobe.run.lock"
    return lock.exists() and lock.read_text().startswith("pid=")


def test_overlapping_run_exits_75_at_once_and_the_first_finishes(tmp_path, target_list):
    out = tmp_path / "results"
    first = netprobe_run(str(target_list), "--out", str(out), "--no-sign", "--timeout", "6",
                         "--vantage", "cron", "--quiet")  # fmt: skip
    try:
        wait_for(lambda: lock_held(out))
        started = time.monotonic()
        second = netprobe_run(str(target_list), "--out", str(out), "--no-sign", "--quiet")
        stdout, stderr = second.communicate(timeout=30)
        assert second.returncode == EXIT_LOCKED, stderr
        assert (
            f"another netprobe run holds the lock {out}/.netprobe.run.lock (pid {first.pid}"
            in stderr
        )
        assert first.poll() is None, "the second run must give up while the first still runs"
        assert time.monotonic() - started < 6
        assert first.wait(timeout=60) == 0, first.stderr.read()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert len(list(out.glob("*_cron.jsonl"))) == 1


def test_killed_run_leaves_a_readable_partial_and_does_not_block_the_next(tmp_path, target_list):
    from netprobe.evidence.keys import generate_key
    from netprobe.evidence.reader import PARTIAL, verify_file

    key = tmp_path / "key"
    signer = generate_key(key, "cron-test")
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(signer.allowed_signers_line() + "\n")
    out = tmp_path / "results"
    victim = netprobe_run(str(target_list), "--out", str(out), "--key", str(key), "--timeout",
                          "30", "--checkpoint-every", "1", "--vantage", "killed", "--quiet")  # fmt: skip
    wait_for(lambda: lock_held(out) and any(out.glob(".*.partial")))
    wait_for(lambda: verify_file(next(out.glob(".*.partial"))).records_covered >= 1)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    (partial,) = out.glob(".*_killed.jsonl.partial")
    verification = verify_file(partial, allowed_signers=allowed)
    assert verification.status == PARTIAL and verification.trusted
    # The kernel dropped the dead run's lock: the next run goes ahead.
    after = netprobe_run(str(target_list), "--out", str(out), "--no-sign", "--timeout", "1",
                         "--vantage", "next", "--quiet")  # fmt: skip
    assert after.wait(timeout=60) == 0, after.stderr.read()
    assert partial.exists() and len(list(out.glob("*_next.jsonl"))) == 1
    # The timeline reads the killed run up to its last signature.
    timeline = subprocess.run(
        [sys.executable, "-m", "netprobe", "timeline", str(partial), "--allowed-signers",
         str(allowed), "--format", "json"],  # fmt: skip
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert timeline.returncode == 0, timeline.stderr
    assert '"vantage": "killed"' in timeline.stdout


def test_config_file_plus_flags(tmp_path, target_list):
    config = tmp_path / "netprobe.yaml"
    config.write_text(
        f"targets: [{target_list.name}]\n"
        "out: from-config\n"
        "vantage: config-vantage\n"
        "timeout: 1\n"
        "sign: false\n"
        "log: netprobe.log\n"
        "quiet: true\n"
        f"resolvers: [{NOWHERE}]\n"
        f"control_resolvers: [{NOWHERE}]\n"
    )
    run = netprobe_run("--config", str(config), "--vantage", "flag-vantage")
    stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 0, stderr
    out = tmp_path / "from-config"  # relative to the config file, not to the working folder
    (result,) = out.glob("*.jsonl")
    assert result.name.endswith("_flag-vantage.jsonl")  # the flag overrides the file
    assert str(result) in stdout  # quiet: only the path
    log = (tmp_path / "netprobe.log").read_text()
    assert "run started" in log and "run finished" in log


def test_bad_config_exits_2_naming_file_and_line(tmp_path):
    config = tmp_path / "netprobe.yaml"
    config.write_text("vantage: v\ntimeout: soon\n")
    run = netprobe_run("--config", str(config))
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 2
    assert f"{config}:2: timeout: expected a number of seconds from 0.05 to 600" in stderr
    assert "Traceback" not in stderr


def test_keep_days_prunes_old_results_but_not_partials(tmp_path, target_list):
    out = tmp_path / "results"
    out.mkdir()
    old = out / "20200101T000000Z_old.jsonl"
    old_partial = out / ".20200101T000000Z_old.jsonl.partial"
    for path in (old, old_partial):
        path.write_text("{}\n")
    run = netprobe_run(str(target_list), "--out", str(out), "--no-sign", "--timeout", "1",
                       "--keep-days", "30", "--vantage", "fresh", "--quiet")  # fmt: skip
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 0, stderr
    assert not old.exists() and old_partial.exists()
    assert len(list(out.glob("*_fresh.jsonl"))) == 1

"""Cron behaviour of `python -m netprobe run` with real processes and local listeners only.

Overlapping runs (lock, exit 75), a run killed mid-way (.partial stays readable, the next run is
not blocked), a config file plus flags, and --keep-days. The target list points at listeners on
127.0.0.1 that accept TCP but never answer TLS, so a run lasts about --timeout seconds.

And the line `netprobe schedule` prints, installed in the user's crontab and run by a real
Debian `cron` daemon (started by the test, root only) on a fresh set-up where neither the
results folder nor the log's folder exists; the test restores the crontab and stops the daemon
whatever happens.
"""

from __future__ import annotations

import os
import shutil
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


def test_run_creates_missing_out_and_log_folders(tmp_path, target_list):
    fresh = tmp_path / "fresh"  # a fresh set-up: neither folder exists
    out, log = fresh / "results", fresh / "logs" / "netprobe.log"
    run = netprobe_run(str(target_list), "--out", str(out), "--log", str(log), "--no-sign",
                       "--timeout", "1", "--vantage", "fresh", "--quiet")  # fmt: skip
    stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 0, stderr
    (result,) = out.glob("*_fresh.jsonl")
    assert stdout == f"{result}\n"
    assert "run finished" in log.read_text()


CRON_PIDFILE = Path("/var/run/crond.pid")


def _cron_running() -> bool:
    try:
        os.kill(int(CRON_PIDFILE.read_text().split()[0]), 0)
    except (OSError, ValueError, IndexError):
        return False
    return True


@pytest.fixture
def crontab():
    """Install lines in the user's crontab (after what is there); restore it afterwards."""
    if shutil.which("crontab") is None or shutil.which("cron") is None:
        pytest.skip("cron not installed (Debian: cron)")
    if os.geteuid() != 0:
        pytest.skip("starting a cron daemon needs root")
    before = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    saved = before.stdout if before.returncode == 0 else None

    def install(line: str) -> None:
        text = (saved or "") + line + "\n"
        subprocess.run(["crontab", "-"], input=text, text=True, check=True)

    yield install
    if saved is None:
        subprocess.run(["crontab", "-r"], capture_output=True)
    else:
        subprocess.run(["crontab", "-"], input=saved, text=True, check=True)


@pytest.fixture
def cron_daemon(tmp_path, crontab):
    """A `cron -f` started for the test (or the one already running, left alone)."""
    if _cron_running():
        yield None
        return
    with open(tmp_path / "cron.out", "w") as output:
        daemon = subprocess.Popen(
            [shutil.which("cron") or "cron", "-f", "-L", "15"],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield daemon
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


def test_the_printed_crontab_line_runs_under_a_real_cron_on_a_fresh_setup(
    tmp_path, crontab, cron_daemon
):
    from netprobe.evidence.keys import generate_key
    from netprobe.evidence.reader import COMPLETE, verify_file

    # A closed loopback port as the target, a listening one as the control: no outside address.
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    control = socket.socket()
    control.bind(("127.0.0.1", 0))
    control.listen(8)
    targets = tmp_path / "loopback.yaml"
    targets.write_text(
        "name: loopback\n"
        "groups:\n"
        "  closed:\n"
        "    label: closed loopback port\n"
        "    endpoints:\n"
        f'      - {{address: "127.0.0.1:{closed_port}", sni: closed.example}}\n'
        "controls:\n"
        f'  endpoints: ["127.0.0.1:{control.getsockname()[1]}"]\n'
    )
    key = tmp_path / "key"
    signer = generate_key(key, "cron-daemon")
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(signer.allowed_signers_line() + "\n")
    fresh = tmp_path / "fresh"  # nothing below it exists yet
    results, log = fresh / "results", fresh / "logs" / "netprobe.log"
    config = tmp_path / "netprobe.yaml"
    config.write_text(
        f"targets: [{targets}]\n"
        f"out: {results}\n"
        f"log: {log}\n"
        f"key: {key}\n"
        "vantage: cron-daemon\n"
        "timeout: 1\n"
        "confirm: 0\n"
        "residual_pause: 0\n"
        "udp_wait: 0\n"
        "deadline: 30\n"
        f"resolvers: [{NOWHERE}]\n"
        f"control_resolvers: [{NOWHERE}]\n"
    )
    printed = subprocess.run(
        [sys.executable, "-m", "netprobe", "schedule", "--every", "1h", "--config", str(config)],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    (line,) = printed.stdout.splitlines()
    minute, *stars, command = line.split(" ", 5)
    assert minute.isdigit() and stars == ["*"] * 4, line
    crontab(f"* * * * * {command}")  # the printed command, every minute
    try:
        deadline = time.monotonic() + 80  # the next minute's tick plus the run
        while time.monotonic() < deadline:
            if log.exists() and ".jsonl\n" in log.read_text():
                break  # --quiet prints the result path last
            if cron_daemon is not None and cron_daemon.poll() is not None:
                pytest.fail(f"cron exited: {(tmp_path / 'cron.out').read_text()}")
            time.sleep(0.5)
        else:
            cron_out = (tmp_path / "cron.out").read_text() if cron_daemon else ""
            listing = sorted(str(p) for p in fresh.rglob("*")) if fresh.exists() else []
            pytest.fail(f"no run within 80 s; files: {listing}; cron: {cron_out}")
    finally:
        control.close()
    text = log.read_text()
    assert "run started: vantage=cron-daemon" in text and "run finished" in text, text
    assert "Traceback" not in text and " ERROR " not in text, text
    (result,) = results.glob("*_cron-daemon.jsonl")
    assert f"{result}\n" in text  # stdout went to the log through the line's redirect
    verification = verify_file(result, allowed_signers=allowed)
    assert verification.status == COMPLETE and verification.trusted

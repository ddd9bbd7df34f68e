"""Fixtures shared by the tests (a test CA and certificate for the loopback names, a private
summary cache, private config and data folders), and CI's rule that nothing may be skipped.

Rules:
- With `CI=true` in the environment every skip (a skip marker, `pytest.skip`, `importorskip`, a
  skipped module) is turned into a failure that carries the skip's reason, so a tool missing
  on CI's machine fails the run loudly instead of hiding a test. Expected failures (xfail) stay
  what they are. Elsewhere skips stay skips.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import trustme

from tests.localservers import issue_cert, make_ca

pytest_plugins = ["pytester"]  # test_ci_skips.py runs small pytest sessions through it


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return make_ca()


@pytest.fixture(scope="module")
def cert(ca: trustme.CA) -> trustme.LeafCert:
    return issue_cert(ca)


@pytest.fixture(autouse=True)
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> None:
    # `netprobe timeline` caches summaries under ~/.cache; tests (and the processes they start)
    # get a fresh cache directory each, so no test sees another's entries or the user's.
    monkeypatch.setenv("NETPROBE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(autouse=True)
def _private_user_folders(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> None:
    # No test may read or write the real user's config or data folder: the trust store
    # ($XDG_CONFIG_HOME/netprobe/allowed_signers), the config file and the local signing key
    # ($XDG_DATA_HOME/netprobe/id_ed25519) live in fresh folders of each test (and of the
    # processes it starts). A test that wants a trusted signer adds it there.
    home = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.delenv("NETPROBE_ALLOWED_SIGNERS", raising=False)
    monkeypatch.delenv("NETPROBE_CONFIG", raising=False)


def _under_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    # A skip's longrepr is (file, line, "Skipped: reason").
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def _fail_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    if _under_ci() and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = (
            f"skipped under CI=true, where nothing may be skipped: {_skip_reason(report)}"
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    _fail_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    outcome = yield
    _fail_skip(outcome.get_result())

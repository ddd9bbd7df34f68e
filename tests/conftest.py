"""Fixtures shared by the probe tests: a test CA and a certificate for the loopback names."""

from __future__ import annotations

import pytest
import trustme

from tests.localservers import issue_cert, make_ca


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

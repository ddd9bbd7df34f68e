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

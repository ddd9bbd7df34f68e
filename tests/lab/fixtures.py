"""pytest fixtures for the lab: import them into a test module (`from tests.lab.fixtures import
lab`).

Rules: the lab needs root and iproute2/iptables. Without them the tests skip with the reason,
except when the environment variable CI is set: then they fail, so CI cannot pass by skipping.
One lab per test module (module scope) keeps bring-up to once per file; teardown runs even when
a test fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.lab.lab import Lab, missing_requirements


def require_lab() -> None:
    """Skip (or, under CI, fail) when this machine cannot run the lab."""
    problem = missing_requirements()
    if problem is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"lab tests cannot run under CI: {problem}")
    pytest.skip(f"lab tests skipped: {problem}")


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """A lab in scenario `none`, shared by the module's tests and torn down at its end."""
    require_lab()
    with Lab.up(f"pytest-{os.getpid()}-{os.urandom(2).hex()}") as running:
        yield running


@pytest.fixture
def clean_lab(lab: Lab) -> Iterator[Lab]:
    """The module's lab, reset to scenario `none` before and after the test."""
    lab.apply("none")
    yield lab
    lab.apply("none")

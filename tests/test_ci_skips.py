"""Under CI (`CI=true`) a skipped test is a failed test (tests/conftest.py), so a tool missing on
CI's machine is loud; elsewhere a skip stays a skip."""

from __future__ import annotations

import pytest

# The hooks under test, brought into each small session's conftest.
CONFTEST = "from tests.conftest import pytest_make_collect_report, pytest_runtest_makereport\n"
# What the lab tests do when a tool is missing (test_lab_e2e.py: ssh-keygen), next to a test
# whose tools are there, a skip marker and an expected failure.
TESTS = {
    "test_tools.py": """
import shutil
import pytest

def test_needs_a_missing_tool():
    if shutil.which("no-such-tool-netprobe") is None:
        pytest.skip("no-such-tool-netprobe not installed (Debian: none)")

def test_needs_a_tool_that_is_there():
    assert shutil.which("sh") is not None

@pytest.mark.skipif(True, reason="a marker's reason")
def test_marked():
    pass

@pytest.mark.xfail(reason="known", strict=True)
def test_expected_failure():
    assert False
""",
}
MODULE_SKIP = """
import pytest
pytest.skip("the whole module needs a missing tool", allow_module_level=True)
"""


@pytest.fixture
def session(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(**TESTS)
    return pytester


def test_under_ci_every_skip_fails_with_its_reason(session, monkeypatch):
    monkeypatch.setenv("CI", "true")
    result = session.runpytest("-rA")
    # A skip inside the test fails it; a skip marker (decided in setup) makes it an error.
    result.assert_outcomes(passed=1, failed=1, errors=1, xfailed=1)
    result.stdout.fnmatch_lines(
        [
            "*skipped under CI=true*no-such-tool-netprobe not installed*",
            "*skipped under CI=true*a marker's reason*",
        ]
    )
    assert result.ret != 0


def test_under_ci_a_skipped_module_is_a_collection_error(pytester, monkeypatch):
    monkeypatch.setenv("CI", "true")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_module_skip=MODULE_SKIP)
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["*skipped under CI=true*the whole module needs a missing tool*"])
    assert result.ret != 0


def test_elsewhere_skips_stay_skips(session, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    session.makepyfile(test_module_skip=MODULE_SKIP)
    result = session.runpytest()
    result.assert_outcomes(passed=1, skipped=3, xfailed=1)
    assert result.ret == 0

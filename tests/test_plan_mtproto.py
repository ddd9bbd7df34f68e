"""The MTProto step of the plan: DC endpoints whose TCP connect worked get three attempts."""

from __future__ import annotations

import pytest

from netprobe.model.records import measurement
from netprobe.run.plan_mtproto import MtprotoAttempt
from netprobe.run.planner import Chain, needs_confirmation
from tests.test_runner_plan import small_plan


def tcp(ip: str, failure: str | None) -> dict:
    return measurement(
        "tcp",
        target_id=f"endpoint:{ip}:443",
        group="dc",
        role="target",
        attempt=0,
        t0=0.0,
        t=0.1,
        failure=failure,
        failed_operation="connect",
        ip=ip,
        port=443,
    )


def test_a_dc_endpoint_that_connects_gets_obfuscated2_then_the_plain_transports() -> None:
    plan = small_plan()
    job = {job.target_id: job for job in plan.target_jobs()}["endpoint:192.0.2.1:443"]
    assert list(plan.follow_up_steps(job, [tcp("192.0.2.1", None)])) == [
        Chain(
            (
                MtprotoAttempt("192.0.2.1", 443, "obfuscated2"),
                MtprotoAttempt("192.0.2.1", 443, "intermediate"),
                MtprotoAttempt("192.0.2.1", 443, "abridged"),
            )
        )
    ]


def test_no_mtproto_after_a_failed_connect_nor_outside_the_dc_group() -> None:
    plan = small_plan()
    jobs = {job.target_id: job for job in plan.target_jobs()}
    dc = jobs["endpoint:192.0.2.1:443"]
    assert list(plan.follow_up_steps(dc, [tcp("192.0.2.1", "generic_timeout_error")])) == []
    ranged = next(job for job in plan.target_jobs() if job.group == "r")
    assert list(plan.follow_up_steps(ranged, [tcp(ranged.target.ip, None)])) == []
    control = next(job for job in plan.control_jobs(0) if job.target_id.startswith("endpoint:"))
    assert list(plan.follow_up_steps(control, [tcp("203.0.113.1", None)])) == []


@pytest.mark.parametrize(("failure", "expected"), [("generic_timeout_error", True), (None, False)])
def test_failed_mtproto_attempts_are_confirmed(failure: str | None, expected: bool) -> None:
    record = {"type": "mtproto", "role": "target", "transport": "intermediate", "failure": failure}
    assert needs_confirmation(record) is expected

"""One vocabulary: words, failure strings and vantage health are defined once and agree everywhere."""

from __future__ import annotations

import pytest

from netprobe.analysis import analyse
from netprobe.analysis.health import VantageHealth, vantage_health
from netprobe.model import failures, vocabulary
from netprobe.run.tally import RunTally
from tests import recordfactory as rf


def test_exception_mapping_lives_in_the_probes() -> None:
    assert not hasattr(failures, "classify")
    from netprobe.probes import errors

    assert callable(errors.classify)


def test_failure_groups_are_made_of_failure_strings() -> None:
    strings = {v for k, v in vars(failures).items() if k.isupper() and isinstance(v, str)}
    for group in (
        failures.CERTIFICATE_FAILURES,
        failures.TIMEOUTS,
        failures.CONNECT_FAILURES_WITHOUT_OPERATION,
        failures.DNS_NO_ADDRESS,
    ):
        assert group <= strings


def test_layer_method_maps() -> None:
    # tls is the one layer blocked in several ways (sni, tls, mitm): only the fallback map has it.
    assert set(vocabulary.LAYER_METHOD) == set(vocabulary.LAYERS)
    assert vocabulary.SINGLE_METHOD_LAYER.items() <= vocabulary.LAYER_METHOD.items()
    assert vocabulary.TLS_LAYER not in vocabulary.SINGLE_METHOD_LAYER
    assert set(vocabulary.LAYER_METHOD.values()) <= set(vocabulary.METHOD_ORDER)


def test_verdict_statuses_are_the_report_counts() -> None:
    analysis = analyse(rf.header(), rf.healthy_controls())
    assert tuple(analysis.to_dict()["counts"]) == vocabulary.VERDICT_STATUSES


def control_domain_lookup_failed() -> list[dict]:
    return [
        rf.dns(
            rf.CONTROL_DOMAIN,
            None,
            failure="generic_timeout_error",
            resolver=rf.CONTROL_RESOLVER,
            resolver_role="control",
            group="control",
            role="control",
        )
    ]


def control_connect(failure: str | None, **kwargs) -> dict:
    return rf.tcp(*rf.CONTROL_ENDPOINT, failure=failure, group="control", role="control", **kwargs)


HEALTH_CASES = [
    ("healthy controls", rf.healthy_controls(), True),
    ("no controls at all", [rf.dns("telegram.org", ["203.0.113.10"])], False),
    ("control resolver only", rf.healthy_controls()[1:2], True),
    ("control endpoint only", [*control_domain_lookup_failed(), control_connect(None)], True),
    (
        "every control failed",
        [*control_domain_lookup_failed(), control_connect("generic_timeout_error")],
        False,
    ),
    (
        # The control domain's own SNI fails, the control SNI on the same address completes:
        # the network works, for `run` as for `report`.
        "control SNI on a control target",
        [
            *control_domain_lookup_failed(),
            *(
                rf.tls(
                    rf.CONTROL_IP,
                    sni=sni,
                    sni_role=sni_role,
                    hostname="other-control.example",
                    failure=failure,
                    group="control",
                    role="control",
                )
                for sni, sni_role, failure in (
                    ("other-control.example", "target", "connection_reset"),
                    (rf.CONTROL_SNI, "control", None),
                )
            ),
        ],
        True,
    ),
    (
        # The injection probe asks an address that runs no DNS server: even a reply from it is
        # no control lookup, for `run` as for `report`.
        "a silent reply proves nothing",
        [
            *control_domain_lookup_failed(),
            control_connect("generic_timeout_error"),
            rf.silent("telegram.org", ["203.0.113.10"]),
        ],
        False,
    ),
    (
        "a target's success proves nothing",
        [*control_domain_lookup_failed(), rf.tcp("203.0.113.50", 443)],
        False,
    ),
]


@pytest.mark.parametrize(
    ("records", "healthy"), [c[1:] for c in HEALTH_CASES], ids=[c[0] for c in HEALTH_CASES]
)
def test_run_and_report_judge_the_vantage_alike(records: list[dict], healthy: bool) -> None:
    tally = RunTally()
    for record in records:
        tally.add(record)
    analysis = analyse(rf.header(), records)
    assert vantage_health(records).healthy is healthy
    assert (tally.vantage_problem() is None) is healthy
    assert analysis.vantage["healthy"] is healthy


def test_health_ignores_other_record_types() -> None:
    health = VantageHealth()
    health.add({"type": "header", "role": "control"})
    health.add({"type": "summary", "failure": None})
    assert health == VantageHealth()

"""What `netprobe run` tells the user at the end: the table's cells, the warnings, the JSON document.

Records are hand-built (tests/recordfactory.py, plus the issue 15 fields: `confirmation`,
`control_round`, `resolver_role: silent`, `sequence`), fed to a `RunTally` the way the executor
feeds it, and rendered with `netprobe.render.run`. No network.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from netprobe.render.run import cell_markup, run_document, run_table, run_warnings, summary_rows
from netprobe.run.tally import RunTally
from tests import recordfactory as rf

FIELD_FAILURE = "unknown_failure: illegal request line"
CONTROL = {"group": "control", "role": "control"}
CONTROL_DOMAIN_ID = f"domain:{rf.CONTROL_DOMAIN}"


def tally_of(records: list[dict]) -> RunTally:
    tally = RunTally()
    for record in records:
        tally.add(record)
    return tally


def result_of(records: list[dict], interrupted: str | None = None) -> Any:
    """What the executor hands the CLI (`RunResult`'s fields)."""
    return SimpleNamespace(
        path=Path("results/run.jsonl"), interrupted=interrupted, summary=tally_of(records)
    )


def state(tally: RunTally, target_id: str, layer: str) -> str:
    return tally.targets[target_id].layers[layer].state()


def table_text(tally: RunTally) -> str:
    console = Console(record=True, width=200, color_system=None)
    console.print(run_table(tally))
    return console.export_text()


def with_fields(record: dict, **fields: Any) -> dict:
    return {**record, **fields}


def failing_control_resolver_run(lookups: int = 12) -> list[dict]:
    """The field case: working control endpoint and probe resolver, a DoH control resolver that
    fails every lookup (of the control domain and of the targets)."""
    records = [
        rf.dns(rf.CONTROL_DOMAIN, [rf.CONTROL_IP], **CONTROL),
        rf.dns(
            rf.CONTROL_DOMAIN,
            failure=FIELD_FAILURE,
            resolver=rf.CONTROL_RESOLVER,
            resolver_role="control",
            **CONTROL,
        ),
        rf.tls(rf.CONTROL_IP, 443, rf.CONTROL_SNI, hostname=rf.CONTROL_DOMAIN, **CONTROL),
        rf.tcp(*rf.CONTROL_ENDPOINT, **CONTROL),
    ]
    for n in range(lookups - 1):
        name = f"t{n}.example"
        records.append(rf.dns(name, ["203.0.113.10"]))
        records.append(
            rf.dns(
                name, failure=FIELD_FAILURE, resolver=rf.CONTROL_RESOLVER, resolver_role="control"
            )
        )
    return records


# -- a control resolver that fails every lookup ------------------------------------------------


def test_a_failing_control_resolver_is_a_warning_naming_it() -> None:
    result = result_of(failing_control_resolver_run(lookups=24))
    assert result.summary.vantage_problem() is None  # the control endpoint works
    assert run_warnings(result) == [
        f"control resolver {rf.CONTROL_RESOLVER}: 0 of 24 lookups answered "
        f"({FIELD_FAILURE} x24): DNS verdicts of this run cannot use it"
    ]


def test_the_control_domain_is_not_ok_when_its_control_lookups_failed() -> None:
    tally = tally_of(failing_control_resolver_run())
    assert state(tally, CONTROL_DOMAIN_ID, "dns") == "ok 1/2"
    text = table_text(tally)
    control_row = next(line for line in text.splitlines() if rf.CONTROL_DOMAIN in line)
    assert "ok 1/2" in control_row
    assert "some controls failed: see the warnings below" in text


def test_a_control_domain_whose_every_lookup_failed_shows_the_failure() -> None:
    records = [
        rf.dns(rf.CONTROL_DOMAIN, failure="generic_timeout_error", **CONTROL),
        rf.dns(
            rf.CONTROL_DOMAIN,
            failure=FIELD_FAILURE,
            resolver=rf.CONTROL_RESOLVER,
            resolver_role="control",
            **CONTROL,
        ),
        rf.dns(
            rf.CONTROL_DOMAIN,
            failure=FIELD_FAILURE,
            resolver=rf.CONTROL_RESOLVER,
            resolver_role="control",
            qtype="AAAA",
            **CONTROL,
        ),
        rf.tcp(*rf.CONTROL_ENDPOINT, **CONTROL),
    ]
    assert state(tally_of(records), CONTROL_DOMAIN_ID, "dns") == f"fail: {FIELD_FAILURE}"


def test_a_target_domains_row_is_the_probe_resolvers_view() -> None:
    # The control resolver is the reference, not the user's path: its failure is the warning.
    tally = tally_of(failing_control_resolver_run())
    assert state(tally, "domain:t0.example", "dns") == "ok"


def test_json_carries_the_warnings_and_the_per_resolver_counts() -> None:
    document = run_document(result_of(failing_control_resolver_run(lookups=24)))
    assert document["warnings"] == run_warnings(result_of(failing_control_resolver_run(24)))
    assert len(document["warnings"]) == 1 and rf.CONTROL_RESOLVER in document["warnings"][0]
    assert document["control_resolvers"] == {
        rf.CONTROL_RESOLVER: {"attempts": 24, "answered": 0, "failures": {FIELD_FAILURE: 24}}
    }
    rows = {row["target_id"]: row for row in document["per_target"]}
    assert rows[CONTROL_DOMAIN_ID]["dns"] == "ok 1/2"


def test_a_working_control_resolver_gives_no_warning() -> None:
    records = [
        *rf.healthy_controls(),
        # No AAAA record and NXDOMAIN are answers: the resolver works.
        rf.dns(
            "v4only.example", resolver=rf.CONTROL_RESOLVER, resolver_role="control", qtype="AAAA"
        ),
        rf.dns(
            "gone.example",
            failure="dns_nxdomain_error",
            resolver=rf.CONTROL_RESOLVER,
            resolver_role="control",
        ),
    ]
    result = result_of(records)
    assert run_warnings(result) == []
    assert run_document(result)["warnings"] == []
    assert "see the warnings" not in table_text(result.summary)


def test_one_resolver_of_two_failing_is_named_alone() -> None:
    other = "https://192.0.2.54/dns-query"
    records = [
        *rf.healthy_controls(),
        rf.dns(
            rf.CONTROL_DOMAIN,
            failure="dns_server_misbehaving",
            resolver=other,
            resolver_role="control",
            **CONTROL,
        ),
    ]
    warnings = run_warnings(result_of(records))
    assert warnings == [
        f"control resolver {other}: 0 of 1 lookups answered (dns_server_misbehaving x1): "
        "DNS verdicts of this run cannot use it"
    ]


# -- control endpoints and the control SNI -----------------------------------------------------


def test_control_endpoints_that_all_failed_are_a_warning() -> None:
    records = [
        rf.dns(rf.CONTROL_DOMAIN, [rf.CONTROL_IP], **CONTROL),
        rf.dns(
            rf.CONTROL_DOMAIN,
            [rf.CONTROL_IP],
            resolver=rf.CONTROL_RESOLVER,
            resolver_role="control",
            **CONTROL,
        ),
        rf.tcp(*rf.CONTROL_ENDPOINT, failure="generic_timeout_error", **CONTROL),
        rf.tcp(*rf.CONTROL_ENDPOINT, failure="generic_timeout_error", attempt=1, **CONTROL),
    ]
    assert run_warnings(result_of(records)) == [
        "control endpoints: 0 of 2 connections made (generic_timeout_error x2): "
        "IP and TLS verdicts of this run cannot use them"
    ]


def test_a_control_sni_that_no_server_answered_is_a_warning() -> None:
    records = [
        *rf.healthy_controls(),
        *rf.tls_pair("203.0.113.10", "telegram.org", control_failure="connection_reset"),
        *rf.tls_pair("203.0.113.11", "telegram.org", control_failure="connection_reset"),
    ]
    assert run_warnings(result_of(records)) == [
        f"control SNI {rf.CONTROL_SNI}: 0 of 2 handshakes answered (connection_reset x2): "
        "SNI verdicts of this run cannot use it (SNI filtering cannot be told from TLS blocking)"
    ]


def test_control_sni_certificate_failures_and_connect_failures_are_no_warning() -> None:
    # A certificate for another name is an answer (the server spoke TLS); a failed TCP connect
    # says nothing about the SNI; a residual `after` retry is evidence, not the control.
    refused = rf.tls_pair(
        "203.0.113.12",
        "telegram.org",
        target_failure="connection_refused",
        control_failure="connection_refused",
        target_failed_operation="connect",
        control_failed_operation="connect",
    )
    after = with_fields(
        rf.tls("203.0.113.10", 443, rf.CONTROL_SNI, sni_role="control", failure="eof_error"),
        sequence="after",
        pause=3.0,
    )
    records = [
        *rf.healthy_controls(),
        *rf.tls_pair("203.0.113.10", "telegram.org", control_failure="ssl_invalid_hostname"),
        *refused,
        after,
    ]
    tally = tally_of(records)
    assert tally.control_problems() == []
    assert tally.sni_controls[rf.CONTROL_SNI].attempts == 1


def test_an_offline_vantage_gets_one_conclusion_not_a_line_per_control() -> None:
    records = [
        rf.dns(
            rf.CONTROL_DOMAIN,
            failure="network_unreachable",
            resolver=rf.CONTROL_RESOLVER,
            resolver_role="control",
            **CONTROL,
        ),
        rf.tcp(*rf.CONTROL_ENDPOINT, failure="network_unreachable", **CONTROL),
    ]
    warnings = run_warnings(result_of(records, interrupted="deadline"))
    assert len(warnings) == 2
    assert "--deadline" in warnings[0]
    assert warnings[1].startswith("cannot conclude: control resolvers all failed")


# -- partial layers and the issue 15 record fields ---------------------------------------------


def test_a_layer_with_some_failures_is_partial_never_plain_ok() -> None:
    records = [
        *rf.healthy_controls(),
        rf.tcp("198.51.100.1", failure="generic_timeout_error"),
        rf.tcp("198.51.100.1", attempt=1),
        rf.tcp("198.51.100.1", attempt=2),
        rf.tcp("198.51.100.2"),
    ]
    tally = tally_of(records)
    assert state(tally, "endpoint:198.51.100.1:443", "tcp") == "ok 2/3"
    assert state(tally, "endpoint:198.51.100.2:443", "tcp") == "ok"


def test_partial_cells_are_yellow_and_full_ones_green() -> None:
    tally = tally_of(
        [
            rf.tcp("198.51.100.1", failure="generic_timeout_error"),
            rf.tcp("198.51.100.1", attempt=1),
            rf.tcp("198.51.100.2"),
            rf.tcp("198.51.100.3", failure="connection_refused"),
        ]
    )
    _, rows, _ = summary_rows(tally)
    tcp_cells = [cell_markup(states[1]) for _, states in rows if states]
    assert tcp_cells == [
        "[yellow]ok 1/2[/]",
        "[green]ok[/]",
        "[red]fail: connection_refused[/]",
    ]


def test_a_lost_reply_outvoted_by_its_confirmations_shows_the_count() -> None:
    original = rf.dns("telegram.org", failure="generic_timeout_error")
    records = [
        *rf.healthy_controls(),
        original,
        with_fields(rf.dns("telegram.org", ["203.0.113.10"]), confirmation=1),
        with_fields(rf.dns("telegram.org", ["203.0.113.10"]), confirmation=2),
    ]
    assert state(tally_of(records), "domain:telegram.org", "dns") == "ok 2/3"


def test_a_failure_its_confirmations_repeat_says_confirmed() -> None:
    failing = rf.tls(
        "203.0.113.10", 443, "telegram.org", hostname="telegram.org", failure="connection_reset"
    )
    records = [
        *rf.healthy_controls(),
        failing,
        with_fields(failing, confirmation=1),
        with_fields(failing, confirmation=2),
    ]
    tally = tally_of(records)
    assert state(tally, "domain:telegram.org", "tls") == "fail: connection_reset (confirmed 3/3)"
    # Without re-probes (--confirm 0, an offline vantage) there is nothing to say about them.
    assert state(tally_of([failing]), "domain:telegram.org", "tls") == "fail: connection_reset"


def test_a_silent_address_that_timed_out_counts_nowhere() -> None:
    silent = rf.dns(
        "telegram.org",
        failure="generic_timeout_error",
        resolver="udp://192.0.2.99:53",
        resolver_role="silent",
    )
    assert silent["rcode"] is None
    records = [*rf.healthy_controls(), rf.dns("telegram.org", ["203.0.113.10"]), silent]
    tally = tally_of(records)
    assert state(tally, "domain:telegram.org", "dns") == "ok"
    assert "generic_timeout_error" not in tally.to_record_fields()["failures"]
    assert tally.resolver_controls.keys() == {rf.CONTROL_RESOLVER}
    # A silent lookup alone makes no row: the domain was not looked up at all.
    assert (
        "domain:other.example"
        not in tally_of([{**silent, "target_id": "domain:other.example"}]).targets
    )


def test_a_silent_address_that_answered_shows_injected() -> None:
    injected = rf.dns(
        "telegram.org", ["198.51.100.66"], resolver="udp://192.0.2.99:53", resolver_role="silent"
    )
    records = [*rf.healthy_controls(), rf.dns("telegram.org", ["203.0.113.10"]), injected]
    tally = tally_of(records)
    assert state(tally, "domain:telegram.org", "dns") == "injected"
    _, rows, _ = summary_rows(tally)
    assert [cell_markup(states[0]) for _, states in rows if states] == ["[red]injected[/]"]
    assert tally.health.control_resolver_ok  # the silent reply is no control lookup either
    assert tally_of([injected]).health.has_controls is False


def test_control_rounds_count_for_the_control_targets() -> None:
    records = []
    for round_number, failure in enumerate([None, "generic_timeout_error", None]):
        records.append(
            with_fields(
                rf.tcp(*rf.CONTROL_ENDPOINT, failure=failure, **CONTROL),
                control_round=round_number,
            )
        )
    tally = tally_of(records)
    endpoint_id = f"endpoint:{rf.CONTROL_ENDPOINT[0]}:{rf.CONTROL_ENDPOINT[1]}"
    assert state(tally, endpoint_id, "tcp") == "ok 2/3"
    assert tally.control_problems() == []


def test_a_truncated_reply_retried_over_tcp_counts_as_its_retry() -> None:
    retried = with_fields(
        rf.dns("telegram.org", ["203.0.113.10"]),
        flags=["QR", "RA", "RD"],
        edns_payload=1232,
        truncated_udp={"rcode": "NOERROR", "answers": [], "flags": ["QR", "TC"], "t": 0.1},
        retried_over_tcp=True,
        mismatched_replies=0,
    )
    assert state(tally_of([retried]), "domain:telegram.org", "dns") == "ok"


# -- the closing summary's layout (issue 12) ----------------------------------------------------


def summary_text(tally: RunTally, width: int) -> str:
    console = Console(record=True, width=width, color_system=None, soft_wrap=True)
    console.print(run_table(tally, width))
    return console.export_text()


def many_failing_targets(count: int = 80) -> list[dict]:
    """Healthy controls after `count` endpoints that all time out, in two groups, plus one web
    name whose lookups meet a middlebox (a long failure string)."""
    records = []
    for index in range(count):
        group = "dc" if index % 2 else "cdn"
        records.append(
            rf.tcp(f"198.51.100.{index + 1}", failure="generic_timeout_error", group=group)
        )
    records.append(rf.dns("telegram.org", failure=FIELD_FAILURE))
    return records + rf.healthy_controls()  # the controls come last in the stream


def test_controls_and_vantage_health_come_first_and_are_never_hidden() -> None:
    text = summary_text(tally_of(many_failing_targets()), 200)
    health = text.index("Controls and vantage health")
    assert health < text.index("vantage point: healthy") < text.index(CONTROL_DOMAIN_ID)
    assert text.index(CONTROL_DOMAIN_ID) < text.index("targets by group")
    assert f"control resolver {rf.CONTROL_RESOLVER}: 1/1 lookups answered" in text
    assert "control endpoints: 2/2 connections made" in text
    assert "not shown" not in text  # 80 targets that agree per group are two lines


def test_a_group_that_agrees_is_one_line_and_one_that_does_not_lists_its_targets() -> None:
    records = many_failing_targets(6)
    records.append(rf.tcp("198.51.100.200", group="dc"))  # one dc endpoint works
    text = summary_text(tally_of(records), 200)
    lines = text.splitlines()
    cdn = [line for line in lines if line.strip().startswith("cdn")]
    assert len(cdn) == 1 and "3 targets, all alike" in cdn[0]
    assert "fail: generic_timeout_error" in cdn[0]
    assert "endpoint:198.51.100.1:" not in text  # a cdn endpoint: folded into the group line
    assert "endpoint:198.51.100.2:443" in text and "endpoint:198.51.100.200:443" in text
    assert not any("dc (" in line for line in lines)


def test_more_rows_than_the_cap_are_counted_after_the_controls() -> None:
    records = [
        rf.tcp(f"198.51.100.{i}", failure="connection_refused", group=f"g{i}") for i in range(1, 70)
    ] + [rf.tcp(f"198.51.100.{i}", group=f"g{i}") for i in range(1, 70)]
    text = summary_text(tally_of(records + rf.healthy_controls()), 200)
    assert text.index(CONTROL_DOMAIN_ID) < text.index("more target rows not shown")


@pytest.mark.parametrize("width", [80, 60, 40])
def test_failure_strings_are_never_cut_mid_word(width: int) -> None:
    records = many_failing_targets(4)
    records.append(
        rf.tcp("198.51.100.77", failure="generic_timeout_error", group="dc", confirmation=1)
    )
    tally = tally_of(records)
    text = summary_text(tally, width)
    words = set(text.split())
    states = {
        layer.state() for target in tally.targets.values() for layer in target.layers.values()
    }
    assert any("confirmed" in s for s in states)
    for state_text in states:
        for word in state_text.split():
            assert word in words, (word, text)
    assert "…" not in text
    assert max(len(line.rstrip()) for line in text.splitlines()) <= width


def test_a_list_without_controls_is_told_so_not_called_offline() -> None:
    # No control domain, no control endpoint, no control resolver asked: nothing was judged.
    problem = tally_of([rf.tcp("198.51.100.1", failure="generic_timeout_error")]).vantage_problem()
    assert problem is not None and "the target list has no controls" in problem
    assert "offline" not in problem


def test_a_list_without_control_endpoints_whose_resolvers_failed_is_not_called_offline() -> None:
    records = [
        rf.dns(
            "telegram.org",
            failure="generic_timeout_error",
            resolver=rf.CONTROL_RESOLVER,
            resolver_role="control",
        ),
        rf.tcp("198.51.100.1", failure="generic_timeout_error"),
    ]
    problem = tally_of(records).vantage_problem()
    assert problem is not None and "offline" not in problem
    assert "control resolvers all failed (generic_timeout_error x1)" in problem
    assert "The target list has no control endpoints" in problem


def test_the_tally_of_connects_is_the_general_paths() -> None:
    # RunTally.add counts a `tcp` record on a path of its own (a sweep is nothing else): the
    # same counts, states, health and warnings as the general path (`_add_any`).
    records = [
        rf.tcp("198.19.0.1"),
        rf.tcp("198.19.0.1", attempt=1, failure="tcp.connection_refused"),
        rf.tcp("198.19.0.2", failure="generic_timeout_error"),
        rf.tcp("198.19.0.2", failure="generic_timeout_error", confirmation=1),
        rf.tcp("2001:db8::1", port=80, failure="tcp.connection_reset"),
        rf.tcp(rf.CONTROL_IP, **CONTROL, control_round=0),
        rf.tcp(rf.CONTROL_IP, **CONTROL, control_round=1, failure="generic_timeout_error"),
        rf.tcp("198.18.0.9", group="control", role="control", failure="tcp.connection_refused"),
    ]
    for subset in (records, records[:5], records[5:], records[-1:]):
        fast, general = RunTally(), RunTally()
        for record in subset:
            fast.add(record)
            general.measurements += 1
            general._add_any(record)
        assert fast.to_dict() == general.to_dict()
        assert fast.health == general.health
        assert fast.control_problems() == general.control_problems()
        assert fast.vantage_problem() == general.vantage_problem()
        assert table_text(fast) == table_text(general)

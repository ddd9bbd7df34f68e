"""The header record of a run, and the resolvers it names (docs/DESIGN.md "header").

Rules:
- The header says what was asked of the network, never what this machine is: no public IP, no
  host name, and target files by base name only (a full path could name the user's home).
- Its fields come in the order of docs/DESIGN.md; the writer adds `signer` last.
- Probe resolvers are the options' `resolvers`; control resolvers are the options'
  `control_resolvers`, else every target list's `controls.resolvers`, else
  `DEFAULT_CONTROL_RESOLVERS`. A bad address raises ValueError with a clear message.
- No asyncio, socket or ssl: parsing `system` reads resolv.conf, nothing here touches the network.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from netprobe import SOFTWARE_NAME, __version__
from netprobe.model.records import HEADER, HeaderRecord, format_utc, new_record
from netprobe.model.resolvers import SYSTEM, ResolverSpec, parse_resolver
from netprobe.run.planner import control_sni
from netprobe.targets.fingerprints import run_fingerprints
from netprobe.targets.lists import TargetList

if TYPE_CHECKING:
    from netprobe.run.executor import RunOptions

DEFAULT_CONTROL_RESOLVERS = ("https://1.1.1.1/dns-query", "https://8.8.8.8/dns-query")


def resolve_option_resolvers(
    target_lists: Sequence[TargetList], options: RunOptions
) -> tuple[list[ResolverSpec], list[ResolverSpec]]:
    """Parse probe and control resolver addresses; raises ValueError with a clear message."""
    probe = [parse_resolver(a, resolv_conf=options.resolv_conf) for a in options.resolvers]
    control_addresses = options.control_resolvers
    if control_addresses is None:
        from_lists = [r for tl in target_lists for r in tl.controls.resolvers]
        control_addresses = from_lists or list(DEFAULT_CONTROL_RESOLVERS)
    control = [parse_resolver(a, resolv_conf=options.resolv_conf) for a in control_addresses]
    return probe, control


def build_header(
    target_lists: Sequence[TargetList],
    options: RunOptions,
    probe_resolvers: Sequence[ResolverSpec],
    control_resolvers: Sequence[ResolverSpec],
    started: datetime,
    run_id: str,
) -> HeaderRecord:
    """The header record of a run started at `started` (UTC) with id `run_id`."""
    system_ip = next((r.ip for r in probe_resolvers if r.address == SYSTEM), None)
    expected: dict[str, list[str]] = {}
    groups: dict[str, dict[str, Any]] = {}
    for tl in target_lists:
        expected.update(tl.expected_ranges)
        groups.update(tl.group_info())
    header = new_record(
        HEADER,
        software_name=SOFTWARE_NAME,
        software_version=__version__,
        run_id=run_id,
        started_at=format_utc(started),
        vantage=options.vantage,
        probe_asn=options.asn or "AS0",
        probe_cc=options.cc or "ZZ",
        resolvers=[r.address for r in probe_resolvers],
        control_resolvers=[r.address for r in control_resolvers],
        system_resolver_ip=system_ip,
        target_files=[{"name": Path(tl.filename).name, "sha256": tl.sha256} for tl in target_lists],
        target_list_name="+".join(tl.name for tl in target_lists),
        control_sni=control_sni(target_lists),
        options={
            "timeout": options.timeout,
            "concurrency": options.concurrency,
            "repeat": options.repeat,
            "deadline": options.deadline,
            "udp_wait": options.udp_wait,
            "max_addresses_per_domain": options.max_addresses_per_domain,
            "ca_bundle": Path(options.ca_bundle).name if options.ca_bundle else None,
            # issue 15: how failures were confirmed and controls spaced (absent in older files)
            "confirm": options.confirm,
            "confirm_spacing": options.confirm_spacing,
            "control_interval": options.control_interval,
            "residual_pause": options.residual_pause,
            # issue 13: bytes of HTTP body kept per record (0: --no-bodies)
            "http_body_limit": options.http_body_limit if options.bodies else 0,
            # issue 13: the caps of the throughput downloads (absent in older files)
            "throughput_bytes": options.throughput_bytes,
            "throughput_seconds": options.throughput_seconds,
        },
        expected_ranges=expected,
        groups=groups,
        # issue 13: what the analysis matches against, so the file alone decides its verdicts
        fingerprints=[
            f.to_dict() for f in run_fingerprints(tl.fingerprints for tl in target_lists)
        ],
    )
    return cast(HeaderRecord, header)

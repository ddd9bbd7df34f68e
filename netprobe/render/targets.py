"""Views of a target list for `netprobe targets show`: the JSON-ready description and its tables.

Rules:
- `describe_targets` is everything `show` prints, as data (the `--format json` document);
  `targets_renderables` draws the tables from that same dict, so both formats show the same facts.
- Pure: returns data or rich renderables; the CLI prints them. Values from the list's file are
  markup-escaped. Endpoints are shown as people read them (`1.2.3.4:443`, `[2001:db8::1]:443`,
  `target_ids.target_label`).
- `--addresses` adds each range's sampled addresses: the first `ADDRESSES_SHOWN` (a `sample: all`
  range is never iterated further), how many there are, and the explicit endpoints a sample
  coincides with (that sample is skipped: the explicit entry is probed instead).
"""

from __future__ import annotations

from itertools import islice
from typing import Any

from rich.console import RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from netprobe.model.target_ids import target_label
from netprobe.targets.lists import LARGE_RUN_PROBES, RangeSpec, TargetList

ADDRESSES_SHOWN = 32


def _sampled(target_list: TargetList, spec: RangeSpec) -> dict[str, Any]:
    shown = list(islice(spec.addresses(), ADDRESSES_SHOWN))
    return {
        "total": spec.size(),
        "shown": shown,
        "more": spec.size() - len(shown),
        "skipped": [target_label(e.target_id) for e in target_list.range_skips(spec)],
    }


def describe_targets(target_list: TargetList, addresses: bool = False) -> dict[str, Any]:
    """Everything `targets show` prints, as JSON-ready data (`addresses`: each range's samples)."""
    group_counts = target_list.group_counts()
    groups = {}
    for name, group in target_list.groups.items():
        groups[name] = {
            "label": group.label,
            "kind": group.kind,
            "expected": group.expected,
            **group_counts[name],
            "domain_ports": sorted({p for d in group.domains for p in d.ports}),
            "downloads": {d.name: d.download for d in group.domains if d.download},  # issue 13
            "ranges_detail": [
                {
                    "cidr": spec.cidr,
                    "sample": "all" if spec.sample is None else spec.sample,
                    "addresses": spec.size(),
                    "ports": list(spec.ports),
                    "sni": spec.sni,
                    **({"sampled": _sampled(target_list, spec)} if addresses else {}),
                }
                for spec in group.ranges
            ],
        }
    controls = target_list.controls
    return {
        "name": target_list.name,
        "description": target_list.description,
        "file": target_list.filename,
        "sha256": target_list.sha256,
        "counts": target_list.counts(),
        "large_run_probes": LARGE_RUN_PROBES,
        "groups": groups,
        "expected_ranges": target_list.expected_ranges,
        "controls": {
            "domains": [d.name for d in controls.domains],
            "endpoints": [target_label(e.target_id) for e in controls.endpoints],
            "sni": controls.sni,
            "resolvers": controls.resolvers,
            "downloads": {d.name: d.download for d in controls.domains if d.download},
        },
        "settings": target_list.settings,
    }


def _line(markup: str) -> Text:
    # What `Console.print(markup, highlight=False)` shows (the consoles print no emoji codes).
    return Text.from_markup(markup, emoji=False)


def targets_renderables(info: dict[str, Any]) -> list[RenderableType]:
    """What `targets show` prints, in order: name, description, checksum, then the tables."""
    parts: list[RenderableType] = []
    parts.append(_line(f"[bold]{escape(info['name'])}[/]  {escape(info['file'])}"))
    if info["description"]:
        parts.append(_line(escape(info["description"])))
    parts.append(_line(f"sha256 {info['sha256']}"))

    groups = Table(title="Groups", title_justify="left")
    groups.add_column("group")
    groups.add_column("kind", no_wrap=True)
    for column in ("domains", "endpoints", "ranges", "range eps"):
        groups.add_column(column, justify="right", no_wrap=True)
    groups.add_column("expected", no_wrap=True)
    for name, group in info["groups"].items():
        groups.add_row(
            f"[bold]{escape(name)}[/]\n{escape(group['label'])}",
            group["kind"],
            str(group["domains"]),
            str(group["endpoints"]),
            str(group["ranges"]),
            str(group["range_endpoints"]),
            group["expected"] or "-",
        )
    parts.append(groups)

    ranges = Table(title="Ranges", title_justify="left")
    for column in ("group", "cidr", "sample", "addresses", "ports", "sni"):
        ranges.add_column(column)
    for name, group in info["groups"].items():
        for spec in group["ranges_detail"]:
            ports = ",".join(map(str, spec["ports"]))
            ranges.add_row(
                name,
                spec["cidr"],
                str(spec["sample"]),
                str(spec["addresses"]),
                ports,
                spec["sni"] or "-",
            )
    if ranges.row_count:
        parts.append(ranges)

    downloads = Table(title="Download objects (throughput probe)", title_justify="left")
    for column in ("group", "domain", "path"):
        downloads.add_column(column)
    sources = [(name, group["downloads"]) for name, group in info["groups"].items()]
    for group_name, paths in [*sources, ("control", info["controls"]["downloads"])]:
        for domain, path in paths.items():
            downloads.add_row(escape(group_name), escape(domain), escape(path))
    if downloads.row_count:
        parts.append(downloads)
    parts += _sampled_parts(info)

    expected = Table(title="Expected ranges", title_justify="left")
    expected.add_column("name")
    expected.add_column("CIDRs")
    for name, cidrs in info["expected_ranges"].items():
        expected.add_row(name, " ".join(cidrs))
    if expected.row_count:
        parts.append(expected)

    controls = Table(title="Controls", title_justify="left")
    controls.add_column("kind")
    controls.add_column("values")
    for kind, values in info["controls"].items():
        if kind == "downloads":
            continue  # in the download objects table above
        shown = " ".join(values) if isinstance(values, list) else values
        controls.add_row(kind, shown or "-")
    parts.append(controls)

    totals = Table(title="Per run", title_justify="left")
    totals.add_column("count")
    totals.add_column("n", justify="right")
    for key, value in info["counts"].items():
        totals.add_row(key.replace("_", " "), str(value))
    parts.append(totals)
    if info["counts"]["probes"] > info["large_run_probes"]:
        parts.append(
            _line(
                f"[yellow]large run:[/] {info['counts']['probes']:,} probes, more than "
                f"{info['large_run_probes']:,}; `netprobe run` needs --allow-large"
            )
        )
    return parts


def _sampled_parts(info: dict[str, Any]) -> list[RenderableType]:
    """Per range (with --addresses): its sampled addresses, bounded, and the skipped samples."""
    parts: list[RenderableType] = []
    for name, group in info["groups"].items():
        for spec in group["ranges_detail"]:
            sampled = spec.get("sampled")
            if sampled is None:
                continue
            parts.append(
                _line(
                    f"[bold]{escape(name)} {spec['cidr']}[/]: {sampled['total']:,} sampled "
                    f"addresses x ports {','.join(map(str, spec['ports']))}"
                )
            )
            parts.append(_line("  " + " ".join(sampled["shown"])))
            if sampled["more"]:
                parts.append(
                    _line(
                        f"  ... and {sampled['more']:,} more (first {len(sampled['shown'])} shown)"
                    )
                )
            for label in sampled["skipped"]:
                parts.append(
                    _line(
                        f"  skipped: the sample {escape(label)} is also an explicit endpoint "
                        "(probed once, as the explicit entry)"
                    )
                )
    return parts

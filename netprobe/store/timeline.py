"""`netprobe timeline --clickhouse`: the file-based timeline's report, computed over the store.

Rules:
- SQL gathers each (network, target, layer) series of healthy runs, clamped and in time order;
  where every UTC hour holds one run (hourly runs: the usual case) each run is its hour's
  sample as is, else the series goes through `timeline.series.hourly_samples` itself (the
  median of the hour, its first and last run). Python runs the CUSUM and everything after it
  through the same `TimelineBuilder` (`add_aggregated`), so for the same runs the JSON is
  identical to `timeline FILES --format json`. (Grouping by hour in SQL cost more than the rest
  of the query: millions of groups of one run each.)
- Times travel as integer microseconds (`schema.started_micros`), so `us / 1e6` is the float the
  file-based timeline computes; scores have 4 decimals, which ClickHouse parses exactly.
- Only rows of stored files are read, each as written by the attempt that stored it:
  `ingest_id IN (SELECT ingest_id FROM runs FINAL)` (see `schema`; an `ingest_id` names one file
  of one attempt), so a batch cut short never shows, without the cost of FINAL over the large
  tables or of comparing file hashes too.
- Series come back as one row each, with arrays sorted by time, in RowBinary (`store.rowbinary`):
  a fleet's millions of hourly samples cost no text formatting or parsing, and no Python
  arithmetic (times come as the floats Python would compute: `us / 1e6` in SQL is the same IEEE
  division). Each target's group and its healthy runs' methods come from one more query.
- `asns`/`vantages` restrict the networks (empty = all); `files` in the report counts the stored
  files of those networks whatever their time, as the file-based report counts the files given.
- Groups and labels as the file timeline has them: a target's group is the `target_group` of the
  latest run in range naming one; the labels are the header's `groups` (the `runs.header`
  column), each from the latest run in range declaring it, in the order they first appear in
  time (the file timeline's order when its files are in time order, as a run folder's are).
- Two stored files (different bytes: the store keeps one row per SHA-256) with the same run id
  in range are one run, as in the file timeline: the first stored counts (the smallest
  `ingest_id`, which sorts in storing order: `store.ingest`; the order `ingest` was given the
  files in stands for the file timeline's file order), each other is listed in
  `duplicates` and not counted. The store has no file paths, so `path` and `copy_of` name the
  files by hash (`sha256:<hex>`); byte-identical copies were stored once and are not listed.
"""

from __future__ import annotations

import json
from collections import defaultdict
from functools import partial

from netprobe.model.vocabulary import ROLE_CONTROL
from netprobe.store import rowbinary, schema
from netprobe.store.client import ClickHouse
from netprobe.store.rowbinary import FLOAT64S, STRING, STRINGS
from netprobe.timeline.builder import TimelineBuilder, TimelineOptions
from netprobe.timeline.nogc import paused_gc
from netprobe.timeline.onset import Sample
from netprobe.timeline.runs import _group_labels as group_labels
from netprobe.timeline.series import hourly_samples

HOUR_US = 3_600_000_000
# Sample((time, y, first, last)) without the named tuple's Python-level __new__: a fleet
# timeline builds millions of them.
_sample = partial(tuple.__new__, Sample)


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _micros_at_or_after(seconds: float) -> int:
    """The smallest integer `us` with `us / 1e6 >= seconds` (what `parse_time` comparisons mean)."""
    us = round(seconds * 1e6)
    while us / 1e6 >= seconds:
        us -= 1
    while us / 1e6 < seconds:
        us += 1
    return us


def _filters(options: TimelineOptions, asns: list[str], vantages: list[str], timed: bool) -> str:
    parts = ["1"]
    if asns:
        parts.append(f"probe_asn IN ({', '.join(_quote(a) for a in asns)})")
    if vantages:
        parts.append(f"vantage IN ({', '.join(_quote(v) for v in vantages)})")
    if timed and options.since is not None:
        parts.append(f"started_us >= {_micros_at_or_after(options.since)}")
    if timed and options.until is not None:
        # started > until is excluded: keep us with us/1e6 <= until.
        parts.append(f"started_us < {_micros_at_or_after(options.until) + _after(options.until)}")
    return " AND ".join(parts)


def _not_in(hashes: list[str]) -> str:
    """SQL: the file is none of `hashes` (the copies of runs stored twice)."""
    if not hashes:
        return "1"
    return f"file_sha256 NOT IN ({', '.join(_quote(h) for h in sorted(hashes))})"


def _file_name(sha256: str) -> str:
    return f"sha256:{sha256}"


def _duplicates(client: ClickHouse, db: str, where: str) -> tuple[list[dict], list[str]]:
    """The `duplicates` list and the hashes of the copies not counted (see the module rules)."""
    rows = client.rows(
        f"SELECT run_id, file_sha256, ingest_id FROM {db}.{schema.RUNS} FINAL "
        f"WHERE {where} AND run_id != '' AND run_id IN (SELECT run_id FROM {db}.{schema.RUNS} "
        f"FINAL WHERE {where} AND run_id != '' GROUP BY run_id HAVING count() > 1) "
        "ORDER BY run_id, ingest_id, file_sha256"
    )
    first: dict[str, str] = {}
    copies: list[tuple[str, str, str, str]] = []  # (ingest_id, sha256, run_id, first sha256)
    for row in rows:
        run_id, sha256 = row["run_id"], row["file_sha256"]
        if run_id in first:
            copies.append((row["ingest_id"], sha256, run_id, first[run_id]))
        else:
            first[run_id] = sha256
    copies.sort()  # in the order they were stored, as the file timeline lists them in file order
    listed = [
        {"path": _file_name(sha256), "copy_of": _file_name(kept), "run_id": run_id}
        for _at, sha256, run_id, kept in copies
    ]
    return listed, [sha256 for _at, sha256, _run, _kept in copies]


def _labels(client: ClickHouse, db: str, where: str) -> dict[tuple[str, str], dict[str, str]]:
    """Per network, group -> label from the runs' headers (see the module rules).

    The headers are grouped in SQL by their `groups` field (`visitParamExtractRaw`, which 18.16
    has), so only one header per distinct declaration is read and parsed here, exactly as
    `timeline.runs` parses it.
    """
    rows = client.rows(
        f"SELECT probe_asn, vantage, min(started_us) AS first_us, max(started_us) AS last_us, "
        f"any(header) AS any_header FROM {db}.{schema.RUNS} FINAL WHERE {where} "
        "GROUP BY probe_asn, vantage, visitParamExtractRaw(header, 'groups') "
        "ORDER BY probe_asn, vantage, first_us"
    )
    labels: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    latest: dict[tuple[str, str, str], int] = {}
    for row in rows:
        network, last = (row["probe_asn"], row["vantage"]), int(row["last_us"])
        try:
            header = json.loads(row["any_header"])
        except ValueError:
            continue
        for name, label in group_labels(header if isinstance(header, dict) else {}).items():
            at = latest.get((*network, name))
            if at is None or last >= at:
                labels[network][name] = label
                latest[(*network, name)] = last
    return labels


def _after(until: float) -> int:
    """1 when the boundary microsecond itself equals `until` (it is kept), else 0."""
    us = _micros_at_or_after(until)
    return 1 if us / 1e6 == until else 0


def store_timeline(
    client: ClickHouse,
    options: TimelineOptions,
    *,
    asns: list[str] | None = None,
    vantages: list[str] | None = None,
) -> dict:
    """The `timeline --format json` document over the store's runs of the chosen networks."""
    # A fleet's millions of samples are tuples of floats and lists of them, none in a reference
    # cycle: the cyclic collector would only walk them again and again (a quarter of the time).
    with paused_gc():  # timeline.nogc
        return _store_timeline(client, options, asns or [], vantages or [])


def _store_timeline(
    client: ClickHouse, options: TimelineOptions, asns: list[str], vantages: list[str]
) -> dict:
    db = client.database
    where = _filters(options, asns, vantages, timed=True)
    duplicates, copies = _duplicates(client, db, where)
    where = f"{where} AND {_not_in(copies)}"
    # Rows of stored files only, each written by the attempt that stored it (see schema).
    stored = f"ingest_id IN (SELECT ingest_id FROM {db}.{schema.RUNS} FINAL WHERE {where})"
    runs: dict[tuple[str, str], list[tuple[float, bool]]] = defaultdict(list)
    for asn, vantage, micros, healthy in client.tsv(
        f"SELECT probe_asn, vantage, started_us, healthy FROM {db}.{schema.RUNS} FINAL "
        f"WHERE {where} ORDER BY probe_asn, vantage, started_us"
    ):
        runs[(asn, vantage)].append((int(micros) / 1e6, healthy == "1"))
    hourly: dict[tuple[str, str], dict[tuple[str, str], list[Sample]]] = defaultdict(dict)
    series_columns = (STRING, STRING, STRING, STRING, FLOAT64S, FLOAT64S, FLOAT64S)
    for asn, vantage, target_id, layer, hours, ys, times in rowbinary.rows(
        client.raw(_hourly_sql(db, where, stored)), series_columns
    ):
        if len(set(hours)) == len(hours):  # one run per hour: its score is the hour's sample
            samples = list(map(_sample, zip(hours, ys, times, times, strict=True)))
        else:  # some hour holds several runs: the file timeline's own arithmetic
            samples = hourly_samples(times, ys)
        hourly[(asn, vantage)][(target_id, layer)] = samples
    methods: dict[tuple[str, str], dict[str, list[tuple[float, str]]]] = defaultdict(dict)
    groups: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    target_columns = (STRING, STRING, STRING, STRING, FLOAT64S, STRINGS)
    for asn, vantage, target_id, group, times, names in rowbinary.rows(
        client.raw(_targets_sql(db, where, stored)), target_columns
    ):
        if group:
            groups[(asn, vantage)][target_id] = group
        if times:
            # time order, as the file timeline adds them (ties: method name)
            methods[(asn, vantage)][target_id] = sorted(zip(times, names, strict=True))
    target_ids: set[str] = set()
    if options.target is not None:
        target_ids = {
            row[0]
            for row in client.tsv(
                f"SELECT DISTINCT target_id FROM {db}.{schema.VERDICTS} "
                f"WHERE role != {_quote(ROLE_CONTROL)} AND {where} AND {stored}"
            )
        }
    labels = _labels(client, db, where)
    builder = TimelineBuilder(options)
    for key in sorted(runs):
        builder.add_aggregated(
            key, runs[key], hourly.get(key, {}), methods.get(key, {}), target_ids,
            groups=groups.get(key, {}), labels=labels.get(key, {}),
        )  # fmt: skip
    report = builder.build()
    untimed = _filters(options, asns, vantages, timed=False)
    files = client.tsv(f"SELECT count() FROM {db}.{schema.RUNS} FINAL WHERE {untimed}")
    report["files"] = int(files[0][0]) if files else 0
    report["skipped"] = []
    report["duplicates"] = duplicates
    return report


def _hourly_sql(db: str, where: str, stored: str) -> str:
    """One row per (network, target, layer): arrays, in step and in run time order, of each
    healthy run's hour (its start, s), clamped score and time (s). `us / 1e6` and `hour * 3600.`
    are the IEEE operations Python does: the same floats."""
    return f"""SELECT probe_asn, vantage, target_id, layer,
       arrayMap(us -> intDiv(us, {HOUR_US}) * 3600., arraySort(groupArray(started_us))),
       arraySort((y, us) -> us, groupArray(score), groupArray(started_us)),
       arrayMap(us -> us / 1e6, arraySort(groupArray(started_us)))
FROM (
    SELECT probe_asn, vantage, target_id, started_us, layer,
           least(1., greatest(0., raw_score)) AS score
    FROM {db}.{schema.VERDICTS}
    ARRAY JOIN score_layers AS layer, score_values AS raw_score
    WHERE healthy = 1 AND role != {_quote(ROLE_CONTROL)} AND {where} AND {stored}
)
GROUP BY probe_asn, vantage, target_id, layer"""


def _targets_sql(db: str, where: str, stored: str) -> str:
    """One row per (network, target): its group (that of the latest run naming one, '' if none)
    and, in step, the time (s) and method of every healthy run's verdict naming a method."""
    named = "healthy = 1 AND method != ''"
    return f"""SELECT probe_asn, vantage, target_id,
       argMaxIf(target_group, started_us, target_group != ''),
       groupArrayIf(started_us / 1e6, {named}), groupArrayIf(method, {named})
FROM {db}.{schema.VERDICTS}
WHERE role != {_quote(ROLE_CONTROL)} AND ({named} OR target_group != '') AND {where} AND {stored}
GROUP BY probe_asn, vantage, target_id"""

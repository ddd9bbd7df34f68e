"""What a run saw, per target and layer, counted while records stream past (pure).

Rules:
- This is reachability as observed ("did a handshake succeed?"), not a verdict: verdicts need
  the controls and live in `netprobe.analysis`, computed from the stored file.
- Layers: `dns` = probe-resolver queries, `tcp` = connects, `tls` = handshakes with the target SNI.
  A control domain's `dns` layer also counts its control-resolver queries (a control domain is
  only `ok` when the lookups the verdicts lean on worked); a target domain's does not (the
  control resolvers are the reference, not the user's path: their failures are warnings).
  Control-SNI handshakes only feed the control counts. `throughput` (issue 13) counts the
  target SNI's downloads (did one work?); the control SNI's downloads count nowhere: a rate is
  judged by `netprobe report`, not here.
- A layer is `ok` when every attempt succeeded, `ok 2/3` when some did, otherwise it carries the
  most common failure (`fail: <failure>`, `fail: <failure> (confirmed 3/3)` when re-probes of
  the failing steps failed too). Confirmation re-probes (`confirmation >= 1`) and control rounds
  (`control_round`) are attempts like any other; a `dns` layer that a silent address answered is
  `injected` whatever else it saw.
- Silent-address lookups (`resolver_role: silent`, the injection probe) are no lookup of the
  name: a timeout is the expected case and counts nowhere; any reply marks the layer `injected`.
- Controls (`ControlCount`): every lookup asked of each control resolver (answered = an address,
  NXDOMAIN or no data), every control-SNI handshake that got past its TCP connect (answered = the
  server sent a certificate, valid for the name or not; `after` retries of a residual pair are
  left out) and every control connection (answered = it worked). A control that answered none
  of its attempts is a warning at the end of the run (`control_problems`).
- Vantage health is `netprobe.analysis.health`'s definition, the one `netprobe report` uses.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from netprobe.analysis.common import connect_failed, is_silent
from netprobe.analysis.health import VantageHealth
from netprobe.model.failures import CERTIFICATE_FAILURES, DNS_NO_ADDRESS, DNS_NO_ANSWER
from netprobe.model.records import (
    CONFIRMATION,
    DNS,
    SEQUENCE,
    SEQUENCE_AFTER,
    TCP,
    THROUGHPUT,
    TLS,
)
from netprobe.model.vocabulary import LAYERS, OK, QUERY_AAAA, ROLE_CONTROL

# A layer's state in the end-of-run table: "-", "ok", "ok 2/3", "fail: <failure>", "injected".
STATE_NONE = "-"
STATE_OK = OK
STATE_FAILED = "fail"
STATE_INJECTED = "injected"

# Record fields of the issue 15 contract (a missing field means the old behaviour).
# How many of a control's failures a warning names.
TOP_FAILURES = 2


@dataclass
class LayerCount:
    ok: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    confirmations: int = 0  # how many of the attempts were confirmation re-probes
    injected: int = 0  # replies from an address that runs no DNS server (dns layer only)

    @property
    def attempts(self) -> int:
        return self.ok + sum(self.failures.values())

    def state(self) -> str:
        if self.injected:
            return STATE_INJECTED
        if self.attempts == 0:
            return STATE_NONE
        if self.ok:
            return STATE_OK if not self.failures else f"{STATE_OK} {self.ok}/{self.attempts}"
        failure, _ = self.failures.most_common(1)[0]
        if self.confirmations:
            failed = sum(self.failures.values())
            return f"{STATE_FAILED}: {failure} (confirmed {failed}/{self.attempts})"
        return f"{STATE_FAILED}: {failure}"


@dataclass
class ControlCount:
    """One control's lookups or handshakes: how many were made and how many it answered."""

    attempts: int = 0
    answered: int = 0
    failures: Counter[str] = field(default_factory=Counter)  # of those it did not answer

    def add(self, failure: str | None, answered: bool) -> None:
        self.attempts += 1
        if answered:
            self.answered += 1
        elif failure:
            self.failures[failure] += 1

    @property
    def failed_all(self) -> bool:
        return self.attempts > 0 and self.answered == 0

    def top_failures(self) -> str:
        """`unknown_failure: illegal request line x24, generic_timeout_error x2`"""
        return ", ".join(f"{f} x{n}" for f, n in self.failures.most_common(TOP_FAILURES))

    def to_dict(self) -> dict[str, Any]:
        return {
            "attempts": self.attempts,
            "answered": self.answered,
            "failures": dict(sorted(self.failures.items())),
        }


@dataclass
class TargetCount:
    target_id: str
    group: str
    role: str
    layers: dict[str, LayerCount] = field(default_factory=dict)

    def layer(self, name: str) -> LayerCount:
        layer = self.layers.get(name)
        if layer is None:  # not setdefault: it would make a LayerCount (and Counter) per record
            layer = self.layers[name] = LayerCount()
        return layer


@dataclass
class RunTally:
    """What `netprobe run` counts while records stream past (see the module rules)."""

    measurements: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    targets: dict[str, TargetCount] = field(default_factory=dict)
    # Strict counts (`failure` is null) for the summary record and `vantage_problem`.
    control_resolver: LayerCount = field(default_factory=LayerCount)
    control_endpoints: LayerCount = field(default_factory=LayerCount)
    control_sni: LayerCount = field(default_factory=LayerCount)
    # Per control, whether it answered at all: resolver address / control SNI -> counts.
    resolver_controls: dict[str, ControlCount] = field(default_factory=dict)
    sni_controls: dict[str, ControlCount] = field(default_factory=dict)
    health: VantageHealth = field(default_factory=VantageHealth)

    def add(self, record: dict[str, Any]) -> None:
        self.measurements += 1
        if record["type"] == TCP:
            self._add_tcp(record)
        else:
            self._add_any(record)

    def _add_any(self, record: dict[str, Any]) -> None:
        """`add` without the count, for a record of any type (the general path)."""
        kind = record["type"]
        if kind == DNS and is_silent(record):
            self._add_silent(record)  # never a failure of the name, never a control
            return
        self.health.add(record)
        failure = record.get("failure")
        if kind == THROUGHPUT and record.get("sni_role") == ROLE_CONTROL:
            return
        control_lookup = kind == DNS and record.get("resolver_role") == ROLE_CONTROL
        if control_lookup:
            self._control(self.resolver_controls, record.get("resolver_address")).add(
                failure, failure is None or failure in DNS_NO_ADDRESS
            )
        if failure == DNS_NO_ANSWER and record.get("query_type") == QUERY_AAAA:
            return  # a name without IPv6 is normal, not a failure of the name
        if failure:
            self.failures[failure] += 1
        if control_lookup:
            _count(self.control_resolver, record)
            if record["role"] != ROLE_CONTROL:
                return  # a target domain's dns layer is the probe resolvers' view
        if kind == TLS and record.get("sni_role") == ROLE_CONTROL:
            _count(self.control_sni, record)
            if record.get(SEQUENCE) != SEQUENCE_AFTER and not connect_failed(record):
                self._control(self.sni_controls, record.get("server_name")).add(
                    failure, failure is None or failure in CERTIFICATE_FAILURES
                )
            return
        _count(self._target(record).layer(kind), record)
        if record["role"] == ROLE_CONTROL and kind in (TCP, TLS):
            _count(self.control_endpoints, record)

    def _add_tcp(self, record: dict[str, Any]) -> None:
        """`add` of a connect (a sweep's every record), the general path's steps for TCP only:
        vantage health counts control connects alone, then the failure, the target's layer and
        the control endpoints (tests/test_run_render.py compares it with `_add_any`)."""
        failure = record.get("failure")
        control = record["role"] == ROLE_CONTROL
        if control:
            self.health.add(record)
        if failure:
            self.failures[failure] += 1
        _count(self._target(record).layer(TCP), record)
        if control:
            _count(self.control_endpoints, record)

    def _add_silent(self, record: Mapping[str, Any]) -> None:
        """An injection probe's lookup: only a reply counts (`injected`); a timeout is expected."""
        if record.get("rcode") is not None:
            self._target(record).layer(DNS).injected += 1

    def _target(self, record: Mapping[str, Any]) -> TargetCount:
        target = self.targets.get(record["target_id"])
        if target is None:
            target = TargetCount(record["target_id"], record["group"], record["role"])
            self.targets[record["target_id"]] = target
        return target

    @staticmethod
    def _control(controls: dict[str, ControlCount], name: Any) -> ControlCount:
        return controls.setdefault(str(name), ControlCount())

    def vantage_problem(self) -> str | None:
        """Why this run cannot support a verdict, in one sentence; None when controls worked.

        Only a run whose every kind of control was probed and failed "looks offline or fully
        filtered"; a kind that was never probed is named as missing from the target list."""
        if self.health.healthy:
            return None
        probed = {
            label: count
            for label, count in (
                ("control resolvers", self.control_resolver),
                ("control endpoints", self.control_endpoints),
            )
            if count.attempts
        }
        if not probed:
            return (
                "cannot conclude: the target list has no controls (no control domain was looked"
                " up and no control endpoint connected to), so no target can be called blocked"
                " from this run; add a `controls:` section (see targets/example.yaml)."
            )
        parts = []
        for label, count in probed.items():
            top = ", ".join(f"{f} x{n}" for f, n in count.failures.most_common(TOP_FAILURES))
            parts.append(f"{label} all failed ({top})")
        if len(probed) == 2:
            why = "This vantage point looks offline or fully filtered"
        elif "control endpoints" in probed:
            why = "No lookup was asked of a control resolver, and the control endpoints failed"
        else:
            why = "The target list has no control endpoints, and the control resolvers failed"
        return f"cannot conclude: {'; '.join(parts)}. {why}, so no target can be called blocked from this run."

    def control_problems(self) -> list[str]:
        """The controls that answered nothing, one sentence each (none when the vantage point
        looks offline: `vantage_problem` says it all then)."""
        if not self.health.healthy:
            return []
        problems = []
        for address, count in self.resolver_controls.items():
            if count.failed_all:
                problems.append(
                    f"control resolver {address}: 0 of {count.attempts} lookups answered"
                    f" ({count.top_failures()}): DNS verdicts of this run cannot use it"
                )
        endpoints = self.control_endpoints
        if endpoints.attempts and not endpoints.ok:
            top = ", ".join(f"{f} x{n}" for f, n in endpoints.failures.most_common(TOP_FAILURES))
            problems.append(
                f"control endpoints: 0 of {endpoints.attempts} connections made ({top}):"
                " IP and TLS verdicts of this run cannot use them"
            )
        for name, count in self.sni_controls.items():
            if count.failed_all:
                problems.append(
                    f"control SNI {name}: 0 of {count.attempts} handshakes answered"
                    f" ({count.top_failures()}): SNI verdicts of this run cannot use it"
                    " (SNI filtering cannot be told from TLS blocking)"
                )
        return problems

    def to_record_fields(self) -> dict[str, Any]:
        return {
            "measurements": self.measurements,
            "targets": len(self.targets),
            "failures": dict(sorted(self.failures.items())),
            "controls": {
                "resolver": {
                    "ok": self.control_resolver.ok,
                    "attempts": self.control_resolver.attempts,
                },
                "endpoints": {
                    "ok": self.control_endpoints.ok,
                    "attempts": self.control_endpoints.attempts,
                },
                "sni": {"ok": self.control_sni.ok, "attempts": self.control_sni.attempts},
            },
        }

    def to_dict(self) -> dict[str, Any]:
        """The `--format json` summary of a run."""
        return {
            **self.to_record_fields(),
            "control_resolvers": {a: c.to_dict() for a, c in self.resolver_controls.items()},
            "control_sni": {name: c.to_dict() for name, c in self.sni_controls.items()},
            "vantage_problem": self.vantage_problem(),
            "per_target": [
                {
                    "target_id": t.target_id,
                    "group": t.group,
                    "role": t.role,
                    **{layer: t.layers[layer].state() for layer in LAYERS if layer in t.layers},
                }
                for t in self.targets.values()
            ],
        }


def _count(count: LayerCount, record: Mapping[str, Any]) -> None:
    failure = record.get("failure")
    if failure:
        count.failures[failure] += 1
    else:
        count.ok += 1
    if (record.get(CONFIRMATION) or 0) >= 1:
        count.confirmations += 1

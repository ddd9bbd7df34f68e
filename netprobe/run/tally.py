"""What a run saw, per target and layer, counted while records stream past (pure).

Rules:
- This is reachability as observed ("did a handshake succeed?"), not a verdict: verdicts need
  the controls and live in `netprobe.analysis`, computed from the stored file.
- Layers: `dns` = probe-resolver queries, `tcp` = connects, `tls` = handshakes with the target SNI.
  Control-resolver queries and control-SNI handshakes only feed the vantage health counts.
- Silent lookups (the injection probe, `resolver_role: silent`) are asked of an address that runs
  no DNS server: their timeout is the expected outcome, so they are counted as measurements only,
  never in a target's dns layer, the failure counts or the controls.
- A layer is `ok` when any attempt succeeded; otherwise it carries the most common failure.
- Vantage health is `netprobe.analysis.health`'s definition, the one `netprobe report` uses.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from netprobe.analysis.common import is_silent
from netprobe.analysis.health import VantageHealth
from netprobe.model.failures import DNS_NO_ANSWER
from netprobe.model.records import DNS, TCP, TLS
from netprobe.model.vocabulary import LAYERS, OK, QUERY_AAAA, ROLE_CONTROL

# A layer's state in the end-of-run table: "-", "ok", "ok 2/3" or "fail: <failure>".
STATE_NONE = "-"
STATE_OK = OK
STATE_FAILED = "fail"


@dataclass
class LayerCount:
    ok: int = 0
    failures: Counter[str] = field(default_factory=Counter)

    @property
    def attempts(self) -> int:
        return self.ok + sum(self.failures.values())

    def state(self) -> str:
        if self.attempts == 0:
            return STATE_NONE
        if self.ok:
            return STATE_OK if not self.failures else f"{STATE_OK} {self.ok}/{self.attempts}"
        failure, _ = self.failures.most_common(1)[0]
        return f"{STATE_FAILED}: {failure}"


@dataclass
class TargetCount:
    target_id: str
    group: str
    role: str
    layers: dict[str, LayerCount] = field(default_factory=dict)

    def layer(self, name: str) -> LayerCount:
        return self.layers.setdefault(name, LayerCount())


@dataclass
class RunTally:
    """What `netprobe run` counts while records stream past (see the module rules)."""

    measurements: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    targets: dict[str, TargetCount] = field(default_factory=dict)
    control_resolver: LayerCount = field(default_factory=LayerCount)
    control_endpoints: LayerCount = field(default_factory=LayerCount)
    control_sni: LayerCount = field(default_factory=LayerCount)
    health: VantageHealth = field(default_factory=VantageHealth)

    def add(self, record: dict[str, Any]) -> None:
        self.measurements += 1
        if record["type"] == DNS and is_silent(record):
            return  # see the module rules: never a failure of the name, never a control
        self.health.add(record)
        failure = record.get("failure")
        if failure == DNS_NO_ANSWER and record.get("query_type") == QUERY_AAAA:
            return  # a name without IPv6 is normal, not a failure of the name
        if failure:
            self.failures[failure] += 1
        kind = record["type"]
        if kind == DNS and record.get("resolver_role") == ROLE_CONTROL:
            _count(self.control_resolver, failure)
            return
        if kind == TLS and record.get("sni_role") == ROLE_CONTROL:
            _count(self.control_sni, failure)
            return
        target = self.targets.get(record["target_id"])
        if target is None:
            target = TargetCount(record["target_id"], record["group"], record["role"])
            self.targets[record["target_id"]] = target
        _count(target.layer(kind), failure)
        if record["role"] == ROLE_CONTROL and kind in (TCP, TLS):
            _count(self.control_endpoints, failure)

    def vantage_problem(self) -> str | None:
        """Why this run cannot support a verdict, in one sentence; None when controls worked."""
        if self.health.healthy:
            return None
        parts = []
        for label, count in (
            ("control resolvers", self.control_resolver),
            ("control endpoints", self.control_endpoints),
        ):
            if count.attempts:
                top = ", ".join(f"{f} x{n}" for f, n in count.failures.most_common(2))
                parts.append(f"{label} all failed ({top})")
            else:
                parts.append(f"no {label} were probed")
        return (
            "cannot conclude: "
            + "; ".join(parts)
            + ". This vantage point looks offline or fully filtered, so no target can be called"
            " blocked from this run."
        )

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


def _count(count: LayerCount, failure: str | None) -> None:
    if failure:
        count.failures[failure] += 1
    else:
        count.ok += 1

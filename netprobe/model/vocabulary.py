"""The words netprobe's verdicts are made of: statuses, methods, layers, query types, roles.

Rules:
- Each word is defined here once; every other module imports it (no string literals elsewhere).
- These strings are written into reports and JSON documents: renaming one changes the output
  format, so they only ever gain members.
- Pure: constants only.
"""

from __future__ import annotations

from netprobe.model import records

# Statuses of a target (and of a layer of it).
OK = "ok"
BLOCKED = "blocked"
DOWN = "down"
INCONCLUSIVE = "inconclusive"
NOT_APPLICABLE = "n/a"
UNKNOWN = "unknown"  # a sign, never a verdict: turns into `inconclusive`
NEUTRAL = "neutral"
# Throughput (issue 13): reachable, but the target's transfers run at a fraction of the control's.
THROTTLED = "throttled"
# The statuses a verdict can have, in the order reports count them.
VERDICT_STATUSES = (OK, BLOCKED, DOWN, INCONCLUSIVE, THROTTLED)

# Methods, in the order a client meets them: the first blocked layer names the verdict's method.
DNS_METHOD = "dns"
IP_METHOD = "ip"
SNI_METHOD = "sni"
TLS_METHOD = "tls"
MITM_METHOD = "mitm"
METHOD_ORDER: tuple[str, ...] = (DNS_METHOD, IP_METHOD, SNI_METHOD, TLS_METHOD, MITM_METHOD)
PROTOCOL_METHOD = "protocol"  # issue 13: TCP connects, the plain MTProto transports get no reply
METHOD_ORDER += (PROTOCOL_METHOD,)
HTTP_METHOD = "http"  # issue 13: a page injected on the path to a name's genuine address
METHOD_ORDER += (HTTP_METHOD,)

# Layers: the record types a target's evidence comes in, in the order a client meets them.
DNS_LAYER = records.DNS
TCP_LAYER = records.TCP
TLS_LAYER = records.TLS
LAYERS: tuple[str, ...] = (DNS_LAYER, TCP_LAYER, TLS_LAYER)
MTPROTO_LAYER = records.MTPROTO  # issue 13: req_pq_multi -> resPQ with the DC endpoints
LAYERS += (MTPROTO_LAYER,)
HTTP_LAYER = records.HTTP  # issue 13: evidence only where http records exist (analysis.http)
LAYERS += (HTTP_LAYER,)
THROUGHPUT_LAYER = records.THROUGHPUT  # issue 13: its score maps the rate ratio to [0, 1]
LAYERS += (THROUGHPUT_LAYER,)
# Two maps from layer to method, on purpose:
# - SINGLE_METHOD_LAYER: the layers that can be blocked one way only (a blocked dns layer is always
#   `dns`, a blocked tcp layer always `ip`). tls is left out: its method (sni, tls or mitm) comes
#   from the evidence, so the analysis reads it from the signs (`analysis.verdict`).
# - LAYER_METHOD: the method a layer's failure points to when nothing finer is known, for every
#   layer (the timeline's default for a blocked layer whose verdicts named no method).
SINGLE_METHOD_LAYER = {DNS_LAYER: DNS_METHOD, TCP_LAYER: IP_METHOD}
LAYER_METHOD = {**SINGLE_METHOD_LAYER, TLS_LAYER: TLS_METHOD}
SINGLE_METHOD_LAYER[MTPROTO_LAYER] = PROTOCOL_METHOD
LAYER_METHOD[MTPROTO_LAYER] = PROTOCOL_METHOD
LAYER_METHOD[HTTP_LAYER] = HTTP_METHOD
LAYER_METHOD[THROUGHPUT_LAYER] = SNI_METHOD
# The status a layer's high score means on the timeline: `throttled` for throughput, else blocked.
LAYER_BAD_STATUS = {THROUGHPUT_LAYER: THROTTLED}

# MTProto transports (issue 13; `probes/mtproto_wire.py` speaks them): the plain ones, whose
# first bytes are fixed (what DPI matches), and obfuscated2, which looks random.
MTPROTO_INTERMEDIATE = "intermediate"
MTPROTO_ABRIDGED = "abridged"
MTPROTO_OBFUSCATED2 = "obfuscated2"
MTPROTO_PLAIN = (MTPROTO_INTERMEDIATE, MTPROTO_ABRIDGED)
MTPROTO_TRANSPORTS = (*MTPROTO_PLAIN, MTPROTO_OBFUSCATED2)

# DNS query types asked for every domain, in this order.
QUERY_A = "A"
QUERY_AAAA = "AAAA"
QUERY_TYPES = (QUERY_A, QUERY_AAAA)

# Roles of a record (`role`, `sni_role`) and of a resolver (`resolver_role`).
ROLE_TARGET = "target"
ROLE_CONTROL = "control"
RESOLVER_PROBE = "probe"
CONTROL_GROUP = "control"

# Kinds of change between two runs of one target (`netprobe diff`), in report order.
NEWLY_BLOCKED = "newly_blocked"  # -> blocked from anything else
UNBLOCKED = "unblocked"  # blocked -> ok
METHOD_CHANGED = "method_changed"  # blocked -> blocked, another method
BECAME_DOWN = "became_down"  # -> down
RECOVERED = "recovered"  # down or inconclusive -> ok
BECAME_INCONCLUSIVE = "became_inconclusive"  # -> inconclusive
ADDED = "added"  # only in the new run
REMOVED = "removed"  # only in the old run
NEWLY_THROTTLED = "newly_throttled"  # -> throttled from anything else (issue 13)
UNTHROTTLED = "unthrottled"  # throttled -> ok
CHANGE_KINDS = (
    NEWLY_BLOCKED,
    UNBLOCKED,
    METHOD_CHANGED,
    BECAME_DOWN,
    RECOVERED,
    BECAME_INCONCLUSIVE,
    ADDED,
    REMOVED,
    NEWLY_THROTTLED,
    UNTHROTTLED,
)

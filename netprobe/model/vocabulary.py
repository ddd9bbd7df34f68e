"""The words netprobe's verdicts are made of: statuses, methods, layers, query types, roles.

Rules:
- Each word is defined here once; every other module imports it (no string literals elsewhere).
- These strings are written into reports and JSON documents: renaming one changes the output
  format, so they only ever gain members.
"""

from __future__ import annotations

# Statuses of a target (and of a layer of it).
OK = "ok"
BLOCKED = "blocked"
DOWN = "down"
INCONCLUSIVE = "inconclusive"
NOT_APPLICABLE = "n/a"
UNKNOWN = "unknown"  # a sign, never a verdict: turns into `inconclusive`
NEUTRAL = "neutral"

# Methods, in the order a client meets them: the first blocked layer names the verdict's method.
DNS_METHOD = "dns"
IP_METHOD = "ip"
SNI_METHOD = "sni"
TLS_METHOD = "tls"
MITM_METHOD = "mitm"
METHOD_ORDER = (DNS_METHOD, IP_METHOD, SNI_METHOD, TLS_METHOD, MITM_METHOD)

# Layers: the record types a target's evidence comes in, in the order a client meets them.
DNS_LAYER = "dns"
TCP_LAYER = "tcp"
TLS_LAYER = "tls"
LAYERS = (DNS_LAYER, TCP_LAYER, TLS_LAYER)
# The method a layer's failure points to when nothing finer is known.
LAYER_METHOD = {DNS_LAYER: DNS_METHOD, TCP_LAYER: IP_METHOD, TLS_LAYER: TLS_METHOD}

# DNS query types asked for every domain, in this order.
QUERY_TYPES = ("A", "AAAA")

# Roles of a record and of a resolver.
ROLE_TARGET = "target"
ROLE_CONTROL = "control"
RESOLVER_PROBE = "probe"
CONTROL_GROUP = "control"

"""The facts every other package shares, each defined once (pure: no I/O imports).

Modules: `records` (record types, TypedDicts, the one JSON line encoder), `vocabulary` (statuses,
methods, layers, query types, roles), `target_ids` (make and parse target ids), `failures` (OONI
failure strings and their groups; the exception mapping is `netprobe.probes.errors`), `resolvers`
(resolver specs such as `udp://192.0.2.53`).
"""

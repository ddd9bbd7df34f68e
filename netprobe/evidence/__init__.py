"""Evidence: result files written, signed, verified and read.

Modules: `format` (the file format, defined once), `writer` (ResultWriter), `verifier` (sans-I/O
verification, events in `events`), `reader` (file I/O around the verifier), `sshsig`, `keys`.

Rules: only `writer`, `reader` and `keys` touch files; `format`, `events`, `verifier` and
`sshsig` are pure. The writer and the verifier take every name, field order and reason from
`format`, so they cannot drift apart.
"""

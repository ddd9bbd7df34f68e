"""The texts of an evidence bundle: MANIFEST.sha256, verify.sh and VERIFY.md (pure).

Rules:
- The manifest is sha256sum(1) text mode, `<64 hex>  <path>` per line, sorted by path, LF only;
  it lists every file of the bundle except itself and its signature, and `parse_manifest`
  accepts nothing else (a `*` binary marker, one space, upper-case hex, a duplicate or an
  absolute or `..` path are errors).
- verify.sh is POSIX sh and calls only `ssh-keygen -Y verify`, `openssl ts -verify` and
  `sha256sum`, plus shell built-ins: no dirname, no python, no netprobe. It stops at the first
  failed check (`set -eu`, every check `|| fail`), and the manifest signature and the manifest
  are checked first, so a change to any file (the script included) fails before anything else
  is believed.
- Names come from `netprobe.evidence.format`; principals are shell-quoted, never pasted raw.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from netprobe.evidence import format as fmt


@dataclass(frozen=True)
class BundledResult:
    path: str  # inside the bundle, e.g. results/<stem>.jsonl
    principal: str  # the allowed_signers principal of its signer
    fingerprint: str
    tsr: bool  # results/<stem>.jsonl.tsr is in the bundle


@dataclass(frozen=True)
class BundlePlan:
    results: list[BundledResult]
    manifest_principal: str
    manifest_fingerprint: str
    trust_source: str  # where allowed_signers came from, a sentence for VERIFY.md
    created_at: str  # UTC ISO time the bundle was made
    reports: list[str] = field(default_factory=list)


_LINE = re.compile(r"^([0-9a-f]{64})  ([^\n]+)$")


def manifest_text(entries: dict[str, bytes]) -> str:
    """sha256sum lines for {path in bundle: SHA-256 digest}, sorted by path."""
    return "".join(f"{entries[name].hex()}  {name}\n" for name in sorted(entries))


def parse_manifest(text: str) -> dict[str, str]:
    """{path: hex digest} of a manifest; ValueError naming the line if it is not as written."""
    if text and not text.endswith("\n"):
        raise ValueError(f"{fmt.BUNDLE_MANIFEST}: the last line has no newline")
    found: dict[str, str] = {}
    for number, line in enumerate(text.split("\n")[:-1], start=1):
        match = _LINE.match(line)
        where = f"{fmt.BUNDLE_MANIFEST}:{number}"
        if not match:
            raise ValueError(f"{where}: expected '<64 lower-case hex>  <path>'")
        digest, name = match.groups()
        if not safe_path(name):
            raise ValueError(f"{where}: unsafe path {name!r}")
        if name in found:
            raise ValueError(f"{where}: {name} is listed twice")
        found[name] = digest
    if list(found) != sorted(found):
        raise ValueError(f"{fmt.BUNDLE_MANIFEST}: paths are not sorted")
    return found


def safe_path(name: str) -> bool:
    """A relative path without `..`, empty parts, backslashes or control characters."""
    parts = name.split("/")
    return (
        bool(name)
        and not name.startswith("/")
        and all(part not in ("", ".", "..") for part in parts)
        and not any(ord(ch) < 32 or ch in "\\\x7f" for ch in name)
    )


def shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def verify_script(plan: BundlePlan) -> str:
    """verify.sh: every check of the bundle with ssh-keygen, openssl and sha256sum only."""
    q = shell_quote
    lines = [
        "#!/bin/sh",
        "# Checks this evidence bundle with stock tools only: ssh-keygen (OpenSSH), openssl and",
        "# sha256sum. Run it from anywhere: sh verify.sh. Exit 0: every check passed.",
        "set -eu",
        'case "$0" in */*) cd "${0%/*}" ;; esac',
        'fail() { echo "verify.sh: FAILED: $*" >&2; exit 1; }',
        "",
        f'echo "== 1. the manifest is signed by {plan.manifest_fingerprint}"',
        f"ssh-keygen -Y verify -f {fmt.BUNDLE_SIGNERS} -I {q(plan.manifest_principal)} "
        f"-n {fmt.BUNDLE_NAMESPACE} -s {fmt.BUNDLE_MANIFEST_SIG} < {fmt.BUNDLE_MANIFEST} "
        f'|| fail "{fmt.BUNDLE_MANIFEST} signature"',
        "",
        'echo "== 2. every file matches the manifest"',
        f'sha256sum --strict -c {fmt.BUNDLE_MANIFEST} || fail "a file differs from the manifest"',
        "",
        'echo "== 3. every result file is signed by its volunteer\'s key"',
    ]
    for item in plan.results:
        lines.append(
            f"ssh-keygen -Y verify -f {fmt.BUNDLE_SIGNERS} -I {q(item.principal)} "
            f"-n {fmt.NAMESPACE} -s {q(item.path + fmt.SIG_SUFFIX)} < {q(item.path)} "
            f'|| fail "signature of {item.path}"'
        )
    stamped = [item for item in plan.results if item.tsr]
    if stamped:
        lines += [
            "",
            'echo "== 4. every RFC 3161 timestamp is for its file and its TSA is trusted"',
        ]
        for item in stamped:
            tsr = item.path + fmt.TSR_SUFFIX
            lines.append(
                f"openssl ts -verify -data {q(item.path)} -in {q(tsr)} -CAfile {fmt.BUNDLE_TSA_CA} "
                f'|| fail "timestamp of {item.path}"'
            )
    count = 2 + len(plan.results) + len(stamped)
    lines += ["", f'echo "OK: all {count} checks passed"', ""]
    return "\n".join(lines)


def verify_readme(plan: BundlePlan) -> str:
    """VERIFY.md: what is in the bundle and how to check it by hand, step by step."""
    q = shell_quote
    signers = sorted({(item.principal, item.fingerprint) for item in plan.results})
    signers_text = "\n".join(f"- `{p}`: `{f}`" for p, f in signers)
    result_lines = "\n".join(
        f"- `{item.path}` (+ `.sig`{', `.tsr`' if item.tsr else ''})" for item in plan.results
    )
    sig_steps = "\n".join(
        f"ssh-keygen -Y verify -f {fmt.BUNDLE_SIGNERS} -I {q(item.principal)} -n {fmt.NAMESPACE} "
        f"-s {q(item.path + fmt.SIG_SUFFIX)} < {q(item.path)}"
        for item in plan.results
    )
    ts_steps = "\n".join(
        f"openssl ts -verify -data {q(item.path)} -in {q(item.path + fmt.TSR_SUFFIX)} "
        f"-CAfile {fmt.BUNDLE_TSA_CA}"
        for item in plan.results
        if item.tsr
    )
    ts_section = (
        f"""
## 4. Trusted timestamps

Each `.tsr` is an RFC 3161 token: a time-stamping authority (TSA) signed the SHA-256 of the result
file at the time it states (genTime), so the file existed then. `{fmt.BUNDLE_TSA_CA}` is the CA
the TSA's certificate must chain to; check that it is the CA of the TSA you expect.

```sh
{ts_steps}
openssl ts -reply -in FILE.tsr -text   # shows "Time stamp:" (genTime) and the TSA name
```
"""
        if ts_steps
        else "\n## 4. Trusted timestamps\n\nNo result file in this bundle has a timestamp.\n"
    )
    reports = "\n".join(f"- `{name}`" for name in plan.reports) or "- (none)"
    return f"""# Evidence bundle: how to check it

Made by netprobe at {plan.created_at}. Everything below uses stock tools only (OpenSSH's
`ssh-keygen`, `openssl`, coreutils' `sha256sum`); `sh verify.sh` runs all of it and exits 0 only
if every check passes. `netprobe bundle --check` runs the same checks in Python.

## What is in it
{result_lines}
- `{fmt.BUNDLE_SIGNERS}`: the signers' public keys (OpenSSH allowed_signers format)
- `{fmt.BUNDLE_MANIFEST}`: the SHA-256 of every other file; `{fmt.BUNDLE_MANIFEST_SIG}` signs it
- reports made from the signed records (convenience copies; the result files are the evidence):
{reports}

## 0. Decide whether you trust the signers

A signature proves which key wrote a file, not whose key it is. Compare these fingerprints with
the ones the volunteers gave you by another channel (phone, in person, their website):

{signers_text}
- manifest signed by `{plan.manifest_principal}`: `{plan.manifest_fingerprint}`

{plan.trust_source}

## 1. The manifest's signature

```sh
ssh-keygen -Y verify -f {fmt.BUNDLE_SIGNERS} -I {q(plan.manifest_principal)} -n {fmt.BUNDLE_NAMESPACE} -s {fmt.BUNDLE_MANIFEST_SIG} < {fmt.BUNDLE_MANIFEST}
```

## 2. Every file against the manifest

```sh
sha256sum --strict -c {fmt.BUNDLE_MANIFEST}
```

## 3. Every result file's signature

Each result file is JSON lines signed by the volunteer's key; the detached `.sig` covers the
whole file.

```sh
{sig_steps}
```
{ts_section}"""

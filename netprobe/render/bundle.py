"""What `netprobe bundle` prints: the files written, and one row per check of `--check`."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table


def made_lines(made: Any) -> list[str]:
    names = ", ".join(item.path for item in made.plan.results)
    return [
        f"bundle: {made.path} ({len(made.files)} files)",
        f"results: {names}",
        "check it: tar xzf FILE && sh <folder>/verify.sh   (or: netprobe bundle --check FILE)",
    ]


def made_dict(made: Any) -> dict[str, Any]:
    return {
        "path": str(made.path),
        "files": list(made.files),
        "results": [
            {"path": r.path, "principal": r.principal, "fingerprint": r.fingerprint, "tsr": r.tsr}
            for r in made.plan.results
        ],
        "manifest_signer": made.plan.manifest_fingerprint,
    }


def checks_table(checks: list[Any]) -> Table:
    table = Table(title="Evidence bundle checks")
    table.add_column("check", overflow="fold")
    table.add_column("result", no_wrap=True)
    table.add_column("details", overflow="fold")
    for check in checks:
        result = "[green]ok[/]" if check.ok else "[red]FAILED[/]"
        table.add_row(escape(check.what), result, escape(check.detail))
    return table

"""Control the censorship lab by hand: `python3 -m tests.lab up|scenario|exec|status|list|down`.

Rules: run from the repository root, as root. Every command takes `--name` (default `lab`) so
several labs can coexist. Errors print one line on stderr and exit 2; `exec` exits with the
command's own status.

Example:
    sudo python3 -m tests.lab up
    sudo python3 -m tests.lab exec -- netprobe run tests/lab/lab.yaml --ca-bundle /run/netprobe-lab/lab/ca.pem
    sudo python3 -m tests.lab scenario sni-reset
    sudo python3 -m tests.lab down
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from tests.lab import scenarios as sc
from tests.lab.lab import Lab, LabError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python3 -m tests.lab",
        description="A censoring ISP in three network namespaces, for trying netprobe offline.",
        epilog="Example: python3 -m tests.lab up && python3 -m tests.lab scenario sni-reset",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        command = commands.add_parser(name, help=help_text, description=help_text)
        command.add_argument("--name", default="lab", help="lab name (default: lab)")
        return command

    add("up", "build the lab (scenario none) and print its CA and target list paths")
    scenario = add("scenario", "switch the ISP to one scenario (see `list`)")
    scenario.add_argument("scenario", help="scenario name, e.g. sni-reset")
    down = add("down", "tear the lab down: processes, namespaces, /etc/netns entries, state")
    down.add_argument("--all", action="store_true", help="tear down every lab on this machine")
    add("status", "show the lab's scenario, namespaces and servers as JSON")
    commands.add_parser("list", help="list scenarios with one-line descriptions")
    run = add("exec", "run a command in the client namespace (the vantage point)")
    run.add_argument("--ns", choices=["client", "isp", "world"], default="client",
                     help="namespace to run in (default: client)")  # fmt: skip
    run.add_argument("argv", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            width = max(map(len, sc.SCENARIOS))
            for scenario in sc.SCENARIOS.values():
                print(f"{scenario.name:<{width}}  {scenario.description}")
        elif args.command == "up":
            lab = Lab.create(args.name)
            print(f"lab {lab.name!r} is up (scenario none)")
            print(f"  namespaces: {' '.join(lab.namespaces)}")
            print(f"  CA bundle:  {lab.ca_path}")
            print(f"  targets:    {lab.targets_path}")
            print(f"try: python3 -m tests.lab exec --name {lab.name} -- netprobe run "
                  f"{lab.targets_path} --ca-bundle {lab.ca_path}")  # fmt: skip
        elif args.command == "scenario":
            lab = Lab.load(args.name)
            lab.apply(args.scenario)
            print(f"lab {lab.name!r}: scenario {args.scenario}: "
                  f"{sc.get_scenario(args.scenario).description}")  # fmt: skip
            print(f"  its ground truth is for {lab.targets_for(args.scenario)}")
        elif args.command == "down":
            names = Lab.names() if args.all else [args.name]
            for name in names:
                Lab.load(name).down()
                print(f"lab {name!r} is down")
        elif args.command == "status":
            print(json.dumps(Lab.load(args.name).status(), indent=2))
        elif args.command == "exec":
            command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
            if not command:
                raise LabError("exec needs a command after `--`")
            lab = Lab.load(args.name)
            finished = lab.exec(
                command, role=args.ns, timeout=None, capture_output=False, cwd=os.getcwd()
            )
            return finished.returncode
    except (LabError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) else str(exc)
        print(f"lab: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m netprobe` and the `netprobe` command: the CLI, with Ctrl-C handled from the start.

Rules: SIGINT gets its handler before anything else is imported, so an interrupt during
start-up (imports, loading lists, creating the key) ends with exit 130 and one line, never a
`KeyboardInterrupt` traceback. `netprobe run` replaces the handler with its own while it
writes a file (the file is then closed with a signed stop checkpoint).
"""

import signal
import sys

EXIT_INTERRUPTED = 130


def _interrupted(signum: int, frame: object) -> None:
    sys.stderr.write("netprobe: interrupted\n")
    sys.stderr.flush()
    raise SystemExit(EXIT_INTERRUPTED)  # unwinds: locks, temporary files are cleaned up


def main() -> None:
    signal.signal(signal.SIGINT, _interrupted)
    from netprobe.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()

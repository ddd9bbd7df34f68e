"""`python -m netprobe` runs the CLI."""

from netprobe.cli import main

if __name__ == "__main__":
    main()

"""netprobe's censorship lab: three network namespaces acting as a vantage point, a censoring
ISP and the outside world, all on documentation addresses (see README.md, "Try it offline").

Rules: usable from tests (`Lab.up()`, `tests.lab.fixtures`) and by hand (`python3 -m tests.lab`);
nothing in it reaches beyond its own namespaces.
"""

from tests.lab.lab import Lab, LabError, missing_requirements

__all__ = ["Lab", "LabError", "missing_requirements"]

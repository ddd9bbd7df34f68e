"""netprobe: measure reachability of network services and prove when and how it is blocked."""

__version__ = "0.1.0"
SOFTWARE_NAME = "netprobe"

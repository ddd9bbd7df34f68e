"""Download objects of a target list (issue 13): which URL path the throughput probe fetches.

A group (or `controls:`) may name the object its domains serve, in one of two forms:

    download: /img/logo.png                 # the same path for every domain of the group
    download:                               # per domain; domains not named get none
      telegram.org: /img/t_logo.png
      web.telegram.org: /img/logo.png

Rules:
- A path starts with "/", is printable ASCII without spaces (percent-encode anything else), and
  is at most `MAX_PATH` characters: it goes verbatim into the request line of a GET.
- In the mapping form every key must be a domain of the same group (`controls.domains` for
  `controls.download`); a key that is not is an error naming the domains that are.
- Only domains get download objects (endpoints and ranges have no Host name to ask for).
- Pure: parsing and checking only, over the nodes `targets.yaml_reader` hands in.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from yaml.nodes import MappingNode, Node

MAX_PATH = 1024
_PATH = re.compile(r"^/[!-~]*$")  # "/" then printable ASCII, no space
PATH_EXPECTED = 'expected a URL path like "/img/logo.png"'


class _NodeReader(Protocol):
    def error(self, node: Node | None, path: str | None, message: str) -> Exception: ...
    def text(self, node: Node, path: str, expected: str = "text") -> str: ...
    def hostname(self, node: Node, path: str) -> str: ...


def check_path(path: str) -> str | None:
    """Why `path` cannot be a download object's path, else None."""
    if len(path) > MAX_PATH:
        return f"{PATH_EXPECTED} of at most {MAX_PATH} characters, got {len(path)}"
    if not _PATH.match(path):
        return f'{PATH_EXPECTED} (printable ASCII, no spaces), got "{path}"'
    return None


def _path(reader: _NodeReader, node: Node, field: str) -> str:
    value = reader.text(node, field, "a URL path")
    problem = check_path(value)
    if problem:
        raise reader.error(node, field, problem)
    return value


def parse_download(
    reader: _NodeReader, node: Node, field: str, domains: Sequence[str]
) -> dict[str, str]:
    """{domain: path} from a `download:` node of a group whose domains are `domains`."""
    if not isinstance(node, MappingNode):
        path = _path(reader, node, field)
        if not domains:
            raise reader.error(node, field, "the group has no domains to download from")
        return {name: path for name in domains}
    found: dict[str, str] = {}
    for key_node, value_node in node.value:
        name = reader.hostname(key_node, field)
        if name not in domains:
            known = ", ".join(domains) or "none"
            raise reader.error(
                key_node, f"{field}.{name}", f"not a domain of this group (its domains: {known})"
            )
        if name in found:
            raise reader.error(key_node, f"{field}.{name}", "duplicate domain")
        found[name] = _path(reader, value_node, f"{field}.{name}")
    return found

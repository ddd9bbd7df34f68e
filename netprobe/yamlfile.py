"""Line-aware reading of YAML files: the node walker shared by target lists and the config file.

Rules:
- Works on the `yaml.compose` node tree, so every error can name its line (1-based).
- Every error is a `YamlFileError` (the readers use subclasses: `TargetError`, `ConfigError`);
  `str(e)` is `file:line: field: message`, or `file:line: message` when no field is concerned.
- Scalars are typed by PyYAML's safe constructor (so `443` is an int and `"443"` a string);
  every check says what it expected and shows what it got (`shown`, `NodeReader.describe`).
- Unknown keys are errors with a "did you mean" when one is close; duplicate keys are errors
  naming the line of the first one.
- A document nested deeper than `MAX_NESTING` is an error naming the line, never a RecursionError.
- Aliases (`*name`) are allowed, but a document whose aliases expand to more than
  `MAX_EXPANDED_NODES` nodes (a "billion laughs" alias bomb: a few lines that expand to
  billions), or nested deeper than `MAX_NESTING` once expanded, or an alias to its own
  ancestor (a loop), is an error naming the alias's line, found in time linear in the file.
- Pure: text in, nodes and values out.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from netprobe.options import shown

__all__ = ["YamlFileError", "NodeReader", "Entry", "line_of", "shown"]


class YamlFileError(ValueError):
    """A YAML file that cannot be used: `str(e)` is `file:line: field: message`."""

    def __init__(self, filename: str, line: int | None, field: str | None, message: str):
        self.filename = filename
        self.line = line
        self.field = field
        self.message = message
        where = filename if line is None else f"{filename}:{line}"
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


def line_of(node: Node) -> int:
    return node.start_mark.line + 1


@dataclass(frozen=True)
class Entry:
    """One `key: value` of a mapping: `key` normalised, `written` as in the file."""

    key: str
    written: str
    key_node: Node
    value_node: Node


MAX_NESTING = 50  # lists/mappings inside each other; our files use fewer than 6


MAX_EXPANDED_NODES = 100_000  # our largest lists have a few thousand nodes


class _TooDeep(yaml.MarkedYAMLError):
    pass


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses documents nested deeper than `MAX_NESTING` (PyYAML's composer and
    constructor recurse: a deeper document would end in RecursionError, not a message)."""

    _depth = 0
    aliases = 0  # how many aliases the document uses (none: no expansion check needed)

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
        self._depth += 1
        try:
            if self._depth > MAX_NESTING:
                raise _TooDeep(
                    None,
                    None,
                    f"nested more than {MAX_NESTING} levels deep",
                    self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)  # type: ignore[misc]
        finally:
            self._depth -= 1


class _AliasBomb(yaml.MarkedYAMLError):
    pass


def _check_expansion(root: Node) -> None:
    """Refuse a tree whose aliases expand too far (see the module rules): each node's expanded
    size and depth are computed once (memoised by identity), without recursion."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            open_nodes.discard(key)
            if size[key] > MAX_EXPANDED_NODES or depth[key] > MAX_NESTING:
                what = (
                    f"aliases expand this to more than {MAX_EXPANDED_NODES:,} nodes"
                    " (an alias bomb?)"
                    if size[key] > MAX_EXPANDED_NODES
                    else f"aliases nest this more than {MAX_NESTING} levels deep"
                )
                raise _AliasBomb(None, None, what, node.start_mark)
            continue
        if key in size:
            continue
        if key in open_nodes:
            raise _AliasBomb(
                None, None, "an alias refers to a node that contains it", node.start_mark
            )
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((kid, False) for kid in _children(node) if id(kid) not in size)


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


class NodeReader:
    """Walks a node tree; holds the filename and the constructor for scalar values.

    Subclasses set `error_class` to their own `YamlFileError` subclass and may add a hint to
    syntax errors by overriding `syntax_hint`.
    """

    error_class: type[YamlFileError] = YamlFileError

    def __init__(self, text: str, filename: str):
        self.text_lines = text.splitlines()
        self.filename = filename
        try:
            self.loader = _Loader(text)  # refuses unprintable characters (NUL, ...) up front
        except yaml.reader.ReaderError as exc:
            line = text.count("\n", 0, exc.position) + 1
            raise self.error_class(
                filename, line, None, f"invalid YAML: character {exc.character:#06x} is not allowed"
            ) from None

    def root(self) -> Node | None:
        """The document's root node (None for an empty document); syntax errors name the line."""
        try:
            node = self.loader.get_single_node()
            if node is not None and self.loader.aliases:
                _check_expansion(node)
            return node
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else None
            problem = exc.problem or exc.context or "syntax error"
            if line and line <= len(self.text_lines):
                problem += self.syntax_hint(self.text_lines[line - 1])
            raise self.error_class(self.filename, line, None, f"invalid YAML: {problem}") from None
        except yaml.YAMLError as exc:
            raise self.error_class(self.filename, None, None, f"invalid YAML: {exc}") from None
        finally:
            self.loader.dispose()

    def syntax_hint(self, source_line: str) -> str:
        """Text appended to a syntax error found on `source_line` (none by default)."""
        return ""

    def error(self, node: Node | None, path: str | None, message: str) -> YamlFileError:
        return self.error_class(self.filename, line_of(node) if node else None, path, message)

    def value(self, node: Node) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:  # e.g. a tag the safe constructor does not know (`=`)
            problem = getattr(exc, "problem", None) or str(exc)
            raise self.error(node, None, f"invalid YAML value: {problem}") from None

    def describe(self, node: Node) -> str:
        if isinstance(node, MappingNode):
            return "a mapping"
        if isinstance(node, SequenceNode):
            return "a list"
        return shown(self.value(node))

    def entries(
        self,
        node: Node,
        path: str,
        allowed: tuple[str, ...],
        *,
        normalise: Callable[[str], str] | None = None,
        noun: str = "key",
    ) -> list[Entry]:
        """The `key: value` pairs of a mapping node, checked: text keys, allowed, no repeats.

        `allowed=()` allows any key; `normalise` maps a written key to its canonical name (the
        config file accepts `keep-days` for `keep_days`); `noun` names keys in messages.
        """
        if not isinstance(node, MappingNode):
            raise self.error(node, path or None, f"expected a mapping, got {self.describe(node)}")
        found: dict[str, Entry] = {}
        for key_node, value_node in node.value:
            written = self.value(key_node)
            if not isinstance(written, str):
                raise self.error(key_node, path or None, f"keys must be text, got {shown(written)}")
            key = normalise(written) if normalise else written
            key_path = f"{path}.{written}" if path else written
            if allowed and key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
                hint = (
                    f'; did you mean "{close[0]}"?'
                    if close
                    else f" (allowed: {', '.join(allowed)})"
                )
                raise self.error(key_node, key_path, f"unknown {noun}{hint}")
            if key in found:
                first = line_of(found[key].value_node)
                raise self.error(key_node, key_path, f"duplicate {noun} (first at line {first})")
            found[key] = Entry(key, written, key_node, value_node)
        return list(found.values())

    def mapping(self, node: Node, path: str, allowed: tuple[str, ...]) -> dict[str, Node]:
        """`entries` as {key: value node}."""
        return {entry.key: entry.value_node for entry in self.entries(node, path, allowed)}

    def sequence(self, node: Node, path: str, expected: str) -> list[Node]:
        if isinstance(node, SequenceNode):
            return list(node.value)
        raise self.error(node, path, f"expected {expected}, got {self.describe(node)}")

    def text(self, node: Node, path: str, expected: str = "text") -> str:
        value = self.value(node) if isinstance(node, ScalarNode) else None
        if not isinstance(value, str) or not value.strip():
            raise self.error(node, path, f"expected {expected}, got {self.describe(node)}")
        return value.strip()

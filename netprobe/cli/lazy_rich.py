"""Defer the rich modules typer's help formatter imports but netprobe's help never uses.

`typer.rich_utils` (loaded for every `--help`) imports `rich.markdown` (markdown-it, pygments)
and `rich.traceback` (pygments again) at its top, ~40 % of its import time, for the "markdown"
markup mode and pretty tracebacks; netprobe uses the "rich" markup mode and plain exceptions.
Rendering markup then imports `rich._emoji_codes` (a table of ~4,000 names, ~3 % of `--help`)
to replace `:name:` codes, which netprobe's help texts do not use.

Rules:
- `install()` puts a stand-in module under each name, only if the real one is not loaded yet.
- A stand-in holds stand-in classes (`Markdown`, `Traceback`) or a stand-in mapping (`EMOJI`):
  calling one, looking a name up in it, or reading any other attribute of it or of the module,
  imports the real module (which then replaces the stand-in in `sys.modules`) and hands over
  the real object. Nothing changes for code that uses them: a text with an emoji code in it
  gets the real table the moment it is looked up.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

_DEFERRED = {"rich.markdown": ("Markdown",), "rich.traceback": ("Traceback",)}
_DEFERRED_MAPPINGS = {"rich._emoji_codes": ("EMOJI",)}


def _real(module: str) -> types.ModuleType:
    current = sys.modules.get(module)
    if isinstance(current, _StandInModule):
        del sys.modules[module]
    return importlib.import_module(module)


class _StandInModule(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(_real(self.__name__), name)


def _stand_in_class(module: str, name: str) -> type:
    class _Meta(type):
        def __getattr__(cls, attr: str) -> Any:
            return getattr(getattr(_real(module), name), attr)

    def new(cls: type, *args: Any, **kwargs: Any) -> Any:
        return getattr(_real(module), name)(*args, **kwargs)

    return _Meta(name, (), {"__new__": new, "__module__": module})


class _StandInMapping:
    """Any use (a lookup, `keys()`, `in`, ...) hands over to the real mapping."""

    def __init__(self, module: str, name: str) -> None:
        self._where = (module, name)

    def _mapping(self) -> Any:
        module, name = self._where
        return getattr(_real(module), name)

    def __getitem__(self, key: Any) -> Any:
        return self._mapping()[key]

    def __contains__(self, key: Any) -> bool:
        return key in self._mapping()

    def __iter__(self) -> Any:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self._mapping())

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(self._mapping(), attr)


def install() -> None:
    """Put the stand-ins in place (see the module rules); harmless if called twice."""
    for module, names in _DEFERRED.items():
        if module in sys.modules:
            continue
        stand_in = _StandInModule(module)
        for name in names:
            setattr(stand_in, name, _stand_in_class(module, name))
        sys.modules[module] = stand_in
    for module, names in _DEFERRED_MAPPINGS.items():
        if module in sys.modules:
            continue
        stand_in = _StandInModule(module)
        for name in names:
            setattr(stand_in, name, _StandInMapping(module, name))
        sys.modules[module] = stand_in

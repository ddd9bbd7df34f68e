"""Defer the two rich modules typer's help formatter imports but netprobe's help never uses.

`typer.rich_utils` (loaded for every `--help`) imports `rich.markdown` (markdown-it, pygments)
and `rich.traceback` (pygments again) at its top, ~40 % of its import time, for the "markdown"
markup mode and pretty tracebacks; netprobe uses the "rich" markup mode and plain exceptions.

Rules:
- `install()` puts a stand-in module under each name, only if the real one is not loaded yet.
- A stand-in holds stand-in classes (`Markdown`, `Traceback`): calling one, or reading any other
  attribute of it or of the module, imports the real module (which then replaces the stand-in
  in `sys.modules`) and hands over the real object. Nothing changes for code that uses them.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

_DEFERRED = {"rich.markdown": ("Markdown",), "rich.traceback": ("Traceback",)}


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


def install() -> None:
    """Put the stand-ins in place (see the module rules); harmless if called twice."""
    for module, names in _DEFERRED.items():
        if module in sys.modules:
            continue
        stand_in = _StandInModule(module)
        for name in names:
            setattr(stand_in, name, _stand_in_class(module, name))
        sys.modules[module] = stand_in

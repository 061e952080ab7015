"""Extension points as plain data: a registry maps a config value to the entry that implements it.

Each kind of plug-in (data sets, feature backbones, models, optimizers, graph modules) has one
:class:`Registry`, keyed by the value of the config key that selects it (``dataset.kind: svqa``). An entry is a
small object owning everything specific to that value; code elsewhere looks it up (``DATASETS.get(kind)``) and
never branches on the string. The harness's own entries are registered lazily, by ``"module:attribute"``, so
that listing or validating names never imports PyTorch or OpenCV (``dualvgr validate`` stays fast); an entry
is imported the first time it is looked up. A plug-in module (named in an experiment's ``plugins`` list)
registers objects directly::

    from dualvgr.core.registries import DATASETS
    DATASETS.register("my-qa", MY_QA_ENTRY)

The registries themselves are listed in :mod:`dualvgr.core.registries`.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any, Iterator

from dualvgr.core.errors import SpecError


class Registry:
    """Config value -> entry, for one kind of extension (``what``), selected by the config key ``key``."""

    def __init__(self, what: str, key: str, builtins: dict[str, str] | None = None):
        self.what = what
        self.key = key
        self._entries: dict[str, Any] = dict(builtins or {})  # name -> entry, or "module:attribute" not yet loaded

    def register(self, name: str, entry: Any, *, replace: bool = False) -> Any:
        """Add ``entry`` under ``name``; a name taken by another entry is refused unless ``replace``."""
        if not isinstance(name, str) or not name:
            raise SpecError(f"a {self.what} needs a non-empty string name, got {name!r}")
        if name in self._entries and not replace and self._entries[name] is not entry:
            raise SpecError(
                f"{self.what} '{name}' is registered already ({self._describe(name)}); choose another name, or "
                f"pass replace=True to override it on purpose"
            )
        self._entries[name] = entry
        return entry

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests that register a toy entry clean up with this)."""
        self._entries.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> Any:
        """The entry registered as ``name``; an unknown name is an error listing the registered ones."""
        if name not in self._entries:
            raise SpecError(self.unknown_message(name))
        entry = self._entries[name]
        if isinstance(entry, str):
            module, _, attribute = entry.partition(":")
            entry = getattr(importlib.import_module(module), attribute)
            self._entries[name] = entry
        return entry

    def unknown_message(self, name: object) -> str:
        close = difflib.get_close_matches(str(name), self.names(), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return (
            f"'{self.key}' is {name!r}, which is no registered {self.what}{hint} (registered: "
            f"{', '.join(self.names())}; a plug-in module listed under 'plugins' can register more)"
        )

    def _describe(self, name: str) -> str:
        entry = self._entries[name]
        return entry if isinstance(entry, str) else f"{type(entry).__module__}.{type(entry).__qualname__}"
